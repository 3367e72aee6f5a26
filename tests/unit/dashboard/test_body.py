"""The dashboard body read from a synthesized template: tokens resolved to local names, anything else refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metricbatch.dashboard.body import LocalNames, find_template, load_body
from metricbatch.dashboard.evaluate import parse_relative_start
from metricbatch.dashboard.render import format_value
from metricbatch.exceptions import ConfigurationError

NAMES = LocalNames(queue_name="q", dlq_name="q-dlq", function_name="fn", region="eu-west-1", service_name="svc-local")


def _template(tmp_path: Path, body_parts: list[Any]) -> Path:
    template = {
        "Resources": {
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Environment": {"Variables": {"POWERTOOLS_SERVICE_NAME": "svc-dev"}}},
            },
            "Board": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {"DashboardBody": {"Fn::Join": ["", body_parts]}},
            },
        }
    }
    path = tmp_path / "Stack.template.json"
    path.write_text(json.dumps(template))
    return path


def test_tokens_resolve_to_the_local_queue_dlq_function_and_region(tmp_path: Path) -> None:
    parts = [
        '{"start":"-P7D","widgets":[{"type":"metric","properties":{"region":"',
        {"Ref": "AWS::Region"},
        '","metrics":[["AWS/SQS","NumberOfMessagesSent","QueueName","',
        {"Fn::GetAtt": ["Queue", "QueueName"]},
        '"],["AWS/SQS","NumberOfMessagesSent","QueueName","',
        {"Fn::GetAtt": ["Dlq", "QueueName"]},
        '"],["AWS/Lambda","Invocations","FunctionName","',
        {"Ref": "Fn"},
        '"]]}}]}',
    ]
    template = _template(tmp_path, parts)
    assert find_template(tmp_path) == template
    body = load_body(find_template(tmp_path), NAMES)
    widget = body.widgets[0]["properties"]
    assert widget["region"] == "eu-west-1"
    assert [row[3] for row in widget["metrics"]] == ["q", "q-dlq", "fn"]
    # the self-metrics' service dimension is a literal in the body: the deployed value maps to the local one
    assert body.dimension_values == {"svc-dev": "svc-local"}
    assert body.dashboard_id == "Board"


def test_a_token_without_a_local_name_is_an_error_naming_it(tmp_path: Path) -> None:
    _template(tmp_path, ['{"widgets":["', {"Fn::GetAtt": ["Queue", "Arn"]}, '"]}'])
    with pytest.raises(ConfigurationError, match=r'\{"Fn::GetAtt": \["Queue", "Arn"\]\}, which has no local name'):
        load_body(find_template(tmp_path), NAMES)


def test_a_missing_assembly_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="make synth"):
        find_template(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="no template"):
        find_template(tmp_path / "empty")


@pytest.mark.parametrize(("text", "seconds"), [("-P7D", 604_800), ("-PT3H", 10_800), ("-P1W", 604_800),
                                               ("-PT90M", 5_400), ("-P1DT1H", 90_000)])  # fmt: skip
def test_relative_start(text: str, seconds: int) -> None:
    assert parse_relative_start(text) == seconds


def test_relative_start_refuses_absolute_times() -> None:
    with pytest.raises(ValueError, match="unsupported dashboard start"):
        parse_relative_start("2026-01-01T00:00:00Z")


def test_single_values_as_shown() -> None:
    assert format_value(None) == "\u2014"  # no datapoint is not zero
    assert format_value(19_998.0) == "20k"
    assert format_value(1_202.0) == "1.202k"
    assert format_value(99.9917) == "99.99"
    assert format_value(0.0000017169, full_precision=True) == "0.0000017169"
    assert format_value(1_200.0, full_precision=True) == "1,200"

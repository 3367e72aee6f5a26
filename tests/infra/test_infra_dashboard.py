"""The savings dashboard: its body is valid JSON, it shows the self-metrics, and its metric math adds up."""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from metricbatch.batcher.self_metrics import (
    API_CALLS_SAVED,
    METRICS_PUBLISHED,
    METRICS_RECEIVED,
    METRICS_REJECTED,
    PUT_METRIC_DATA_CALLS,
    SELF_METRIC_NAMES,
)

if TYPE_CHECKING:
    from conftest import SynthResult

MATH_FUNCTIONS = {"IF", "FILL"}


def _body(result: SynthResult) -> dict[str, Any]:
    _, dashboard = result.only("AWS::CloudWatch::Dashboard")
    body: dict[str, Any] = json.loads(result.render(dashboard["Properties"]["DashboardBody"]))
    return body


def _widget(body: dict[str, Any], title: str) -> Any:
    (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
    return widget


def _metric_rows(body: dict[str, Any]) -> list[list[Any]]:
    return [row for w in body["widgets"] for row in w["properties"].get("metrics", [])]


def _options(row: list[Any]) -> dict[str, Any]:
    return row[-1] if isinstance(row[-1], dict) else {}


class _MetricMath:
    """Evaluates a widget's metric math the way CloudWatch would for one period, given a value per metric."""

    def __init__(self, widget: dict[str, Any], values: dict[tuple[str, ...], float]) -> None:
        self._by_id: dict[str, list[Any]] = {}
        self._by_label: dict[str, list[Any]] = {}
        for row in widget["properties"]["metrics"]:
            options = _options(row)
            if "id" in options:
                self._by_id[options["id"]] = row
            if "label" in options:
                self._by_label[options["label"]] = row
        self._values = values

    def value_of(self, label: str) -> float:
        return float(self._evaluate(self._by_label[label]))

    def _evaluate(self, row: list[Any]) -> Any:
        options = _options(row)
        if "expression" not in options:
            key = tuple(str(part) for part in row if not isinstance(part, dict))
            return np.float64(self._values[key])  # IEEE division: x / 0 is inf or nan, as in metric math
        expression = options["expression"]
        names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)) - MATH_FUNCTIONS
        undefined = names - set(self._by_id)
        assert not undefined, f"{expression!r} uses ids not defined in its widget: {undefined}"
        scope: dict[str, Any] = {name: self._evaluate(self._by_id[name]) for name in names}
        scope["FILL"] = lambda series, default: default if series is None else series
        scope["IF"] = lambda condition, then, otherwise: then if condition else otherwise
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(eval(expression, {"__builtins__": {}}, scope))


def test_dashboard_name_is_per_environment_and_region(env_synth: SynthResult) -> None:
    dashboard_id, dashboard = env_synth.only("AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == f"MetricBatching-{env_synth.settings.name}-savings-eu-west-1"
    assert env_synth.template["Outputs"]["DashboardName"]["Value"] == {"Ref": dashboard_id}


def test_body_is_json_and_shows_every_self_metric_of_this_environment(env_synth: SynthResult) -> None:
    body = _body(env_synth)
    service = f"metricbatch-{env_synth.settings.name}"
    shown = {row[1] for row in _metric_rows(body) if row[:1] == ["MetricBatch"]}
    # ApiCallsSaved is derived on the dashboard by its definition (MetricsPublished - PutMetricDataCalls)
    assert shown == set(SELF_METRIC_NAMES) - {API_CALLS_SAVED}
    for row in _metric_rows(body):
        if row[:1] == ["MetricBatch"]:
            assert row[2:4] == ["service", service], row
            assert _options(row)["stat"] == "Sum"


def test_pipeline_health_widgets(env_synth: SynthResult) -> None:
    body = _body(env_synth)
    main_id, dlq_id = env_synth.queue_ids
    function_id, _ = env_synth.only("AWS::Lambda::Function")
    queue_name, dlq_name, function = f"<{main_id}.QueueName>", f"<{dlq_id}.QueueName>", f"<{function_id}>"
    rows = {tuple(str(p) for p in row if not isinstance(p, dict)) for row in _metric_rows(body)}
    for expected in (
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue_name),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue_name),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq_name),
        ("AWS/Lambda", "Errors", "FunctionName", function),
        ("AWS/Lambda", "Throttles", "FunctionName", function),
        ("AWS/Lambda", "Duration", "FunctionName", function),
        ("AWS/Lambda", "ConcurrentExecutions", "FunctionName", function),
        ("MetricBatch", METRICS_REJECTED, "service", f"metricbatch-{env_synth.settings.name}"),
    ):
        assert expected in rows


def test_savings_totals_cover_the_selected_time_range(env_synth: SynthResult) -> None:
    body = _body(env_synth)
    for title in ("Over the selected time range", "Dollars over the selected time range"):
        assert _widget(body, title)["properties"]["setPeriodToTimeRange"] is True


@pytest.fixture
def sample_period(env_synth: SynthResult) -> dict[tuple[str, ...], float]:
    """One period of traffic: a million metrics in a thousand PutMetricData calls."""
    main_id, dlq_id = env_synth.queue_ids
    function_id, _ = env_synth.only("AWS::Lambda::Function")
    service = ("service", f"metricbatch-{env_synth.settings.name}")
    queue = ("QueueName", f"<{main_id}.QueueName>")
    return {
        ("MetricBatch", METRICS_RECEIVED, *service): 1_002_000,
        ("MetricBatch", METRICS_PUBLISHED, *service): 1_001_000,
        ("MetricBatch", PUT_METRIC_DATA_CALLS, *service): 1_000,
        # what an older batcher reported (received - calls); the dashboard must not use it
        ("MetricBatch", API_CALLS_SAVED, *service): 1_001_000,
        ("AWS/SQS", "NumberOfMessagesSent", *queue): 1_000,
        ("AWS/SQS", "NumberOfMessagesReceived", *queue): 1_000,
        ("AWS/SQS", "NumberOfMessagesDeleted", *queue): 1_000,
        ("AWS/SQS", "NumberOfEmptyReceives", *queue): 6_000,
        ("AWS/SQS", "NumberOfMessagesSent", "QueueName", f"<{dlq_id}.QueueName>"): 1_000,
        ("AWS/Lambda", "Invocations", "FunctionName", f"<{function_id}>"): 1_000,
        ("AWS/Lambda", "Duration", "FunctionName", f"<{function_id}>"): 1_000_000,  # ms, summed
    }


def test_dollar_math(env_synth: SynthResult, sample_period: dict[tuple[str, ...], float]) -> None:
    math_ = _MetricMath(_widget(_body(env_synth), "Dollars over the selected time range"), sample_period)
    memory_gb = env_synth.settings.function_memory_mb / 1024
    assert memory_gb == 0.25
    saved = 1_000_000 * 0.01 / 1000  # $10: one PutMetricData call per metric would have cost that much more
    sqs = 10_000 * 0.40 / 1_000_000
    lambda_ = 1_000 * 0.20 / 1_000_000 + 1_000 * memory_gb * 0.0000133334  # 1,000 s of 0.25 GB
    assert math.isclose(math_.value_of("Saved on PutMetricData ($)"), saved)
    assert math.isclose(math_.value_of("Pipeline cost ($)"), sqs + lambda_)
    assert math.isclose(math_.value_of("Net saving ($)"), saved - sqs - lambda_)


def test_trend_graph_splits_the_cost(env_synth: SynthResult, sample_period: dict[tuple[str, ...], float]) -> None:
    math_ = _MetricMath(_widget(_body(env_synth), "Dollars per hour: saved, pipeline cost, net"), sample_period)
    assert math.isclose(math_.value_of("SQS requests ($)"), 10_000 * 0.40 / 1_000_000)
    assert math.isclose(math_.value_of("Batcher Lambda ($)"), 1_000 * 0.20 / 1_000_000 + 1_000 * 0.25 * 0.0000133334)


def test_reduction_percent(env_synth: SynthResult, sample_period: dict[tuple[str, ...], float]) -> None:
    math_ = _MetricMath(_widget(_body(env_synth), "Over the selected time range"), sample_period)
    assert math.isclose(math_.value_of("API calls saved (%)"), 100 * 1_000_000 / 1_001_000)
    assert math_.value_of("Metrics published") == 1_001_000
    assert math_.value_of("PutMetricData calls") == 1_000
    # the batcher's definition: published - calls (not received - calls, not the raw ApiCallsSaved series)
    assert math_.value_of("API calls saved") == 1_001_000 - 1_000


def test_reduction_percent_is_zero_without_traffic(env_synth: SynthResult) -> None:
    widget = _widget(_body(env_synth), "Over the selected time range")
    idle = dict.fromkeys(_all_metric_keys(widget), 0.0)
    assert _MetricMath(widget, idle).value_of("API calls saved (%)") == 0


def _all_metric_keys(widget: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        tuple(str(p) for p in row if not isinstance(p, dict))
        for row in widget["properties"]["metrics"]
        if "expression" not in _options(row)
    ]

"""`metricbatch savings` against the embedded AWS: numbers match what the gateway counted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from metricbatch.cli import main
from metricbatch.cli.savings import collect, parse_since
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline
from metricbatch.limits import PRICE_PUT_METRIC_DATA_PER_REQUEST

METRICS = 3_000


@pytest.fixture(scope="module")
def drained() -> Iterator[tuple[LocalPipeline, int]]:
    # GIVEN a local pipeline that received METRICS metrics over 30 series and delivered them
    with LocalPipeline(queue_name=f"savings-{uuid.uuid4().hex[:8]}") as pipeline:
        pipeline.aws.ledger.reset()
        producer = pipeline.producer(handle_sigterm=False)
        namespace = f"Shop/Savings{uuid.uuid4().hex[:8]}"
        for i in range(METRICS):
            producer.send_metric("Latency", float(i % 7), unit="Milliseconds", namespace=namespace,
                                 dimensions={"Route": f"r{i % 30}"})  # fmt: skip
        assert producer.flush(timeout=30)
        producer.close()
        pipeline.drain()
        put_calls = pipeline.aws.ledger.count("cloudwatch:PutMetricData")
        yield pipeline, put_calls


def _savings_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["savings", *argv, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    report: dict[str, Any] = json.loads(out[-1])
    return report


def test_savings_matches_the_ledger(drained: tuple[LocalPipeline, int], capsys: pytest.CaptureFixture[str]) -> None:
    _, put_calls = drained
    assert 0 < put_calls < METRICS / 100

    # WHEN the command reads the self-metrics the batcher emitted (EMF, extracted into the embedded CloudWatch)
    report = _savings_json(capsys, "--env", "local", "--since", "1d")

    # THEN its numbers are the ones the gateway counted
    assert report["service"] == LOCAL_SERVICE_NAME
    assert report["metrics_received"] == METRICS
    assert report["metrics_published"] == METRICS
    assert report["put_metric_data_calls"] == put_calls
    assert report["api_calls_saved"] == METRICS - put_calls
    assert report["gross_saving"] == pytest.approx((METRICS - put_calls) * PRICE_PUT_METRIC_DATA_PER_REQUEST)
    # AWS/SQS and AWS/Lambda do not exist in the embedded AWS: zero, and the report says so
    assert report["sqs_requests"] == 0 and report["lambda_invocations"] == 0
    assert report["pipeline_cost"] == 0
    assert report["net_saving"] == pytest.approx(report["gross_saving"])
    assert any("AWS/SQS" in m for m in report["missing"])
    assert any("AWS/Lambda" in m for m in report["missing"])
    # one day looked back: per day is the period's figure; a month is 730 h
    assert report["per_day"]["gross_saving"] == pytest.approx(report["gross_saving"])
    assert report["per_month"]["gross_saving"] == pytest.approx(report["gross_saving"] * 730 / 24)


def test_savings_with_service_override_and_names(
    drained: tuple[LocalPipeline, int], capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline, put_calls = drained
    # GIVEN a deployed environment name without a CloudFormation stack: names come from the flags
    report = _savings_json(
        capsys,
        "--env", "dev", "--service", LOCAL_SERVICE_NAME, "--since", "7d",
        "--queue-name", pipeline.queue_name, "--function-name", "metricbatch-batcher",
    )  # fmt: skip
    assert report["metrics_received"] == METRICS
    assert report["put_metric_data_calls"] == put_calls
    assert report["queue_name"] == pipeline.queue_name
    assert report["per_day"]["gross_saving"] == pytest.approx(report["gross_saving"] / 7)
    assert any(pipeline.queue_name in m for m in report["missing"])


def test_savings_table_explains_absent_metrics(
    drained: tuple[LocalPipeline, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["savings", "--env", "local"]) == 0
    out = capsys.readouterr().out
    assert "net saving" in out
    assert "counted as zero" in out


def test_unknown_service_reports_nothing(drained: tuple[LocalPipeline, int]) -> None:
    pipeline, _ = drained
    report = collect(pipeline.cloudwatch, env="local", period_seconds=3600, service="metricbatch-nowhere")
    assert report.metrics_received == 0
    assert report.net_saving == 0
    assert any("metricbatch-nowhere" in m for m in report.missing)


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604_800), ("24h", 86_400), ("90m", 5_400), ("2", 172_800)])
def test_parse_since(text: str, seconds: int) -> None:
    assert parse_since(text) == seconds


def test_parse_since_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since("last week")

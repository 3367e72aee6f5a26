"""Log hygiene: INFO and above never carry metric values, dimension values or credentials.

The batcher runs with real, signed boto3 clients (moto in-process, no network) and with failing fakes; the
producer with failing fakes. Every log record at INFO+ (and the Powertools JSON lines on stdout) is searched for
the payload's markers and for credential-like strings.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws

from metricbatch.batcher.batcher import BatcherConfig, MetricBatcher
from metricbatch.batcher.self_metrics import BatchReport
from metricbatch.emulator.strict_cloudwatch import validate_put_metric_data
from metricbatch.worker.poller import LambdaContext, build_record

from ..conftest import ProducerFactory, RecordedSleeps
from ..fakes import FakeCloudWatch, FakeSqs, client_error, connection_error, throttling

VALUE_MARKER = 424242.4242
DIM_MARKER = "dimvalue-7f3a9c"
BAD_VALUE_MARKER = "not-a-number-91b2"
BODY_MARKER = "unparseable-body-c0ffee"
SECRET_KEY = "testing"
SESSION_TOKEN = "HYGIENE-SESSION-TOKEN-5d1e"
ACCESS_KEY = "AKIAHYGIENETEST00001"
FORBIDDEN = (
    str(VALUE_MARKER),
    DIM_MARKER,
    BAD_VALUE_MARKER,
    BODY_MARKER,
    SESSION_TOKEN,
    "Signature=",
    "X-Amz-Security-Token",
    "Authorization",
    f"{SECRET_KEY}/",  # a secret key inside a credential scope or header
)


def _bodies() -> list[str]:
    now = time.time()
    good = {
        "namespace": "Hygiene/Test",
        "name": "Latency",
        "value": VALUE_MARKER,
        "unit": "Milliseconds",
        "dimensions": {"Customer": DIM_MARKER},
        "timestamp": now,
    }
    bad = {"namespace": "Hygiene/Test", "name": "Latency", "value": BAD_VALUE_MARKER, "dimensions": {"C": DIM_MARKER}}
    return [
        json.dumps({"v": 1, "metrics": [good, good, bad]}),
        json.dumps(
            {"v": 1, "metrics": [{k: v for k, v in good.items() if k != "value"} | {"values": [VALUE_MARKER, 1.0]}]}
        ),
        BODY_MARKER + json.dumps(good),
    ]


def _assert_clean(records: list[logging.LogRecord], extra_output: str = "") -> None:
    texts = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records if r.levelno >= logging.INFO]
    texts.append(extra_output)
    for text in texts:
        for forbidden in FORBIDDEN:
            assert forbidden not in text, f"{forbidden!r} leaked into a log line: {text[:300]}"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield


def test_handler_logs_no_payload_and_no_credentials(
    credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the real handler with signed boto3 clients (moto in-process) and a batch of metrics, good and bad
    caplog.set_level(logging.INFO)
    assert logging.getLogger("botocore").getEffectiveLevel() > logging.DEBUG  # boto3 debug logging is off
    with mock_aws():
        import boto3

        sqs = boto3.client("sqs")
        dlq_url = sqs.create_queue(QueueName="hygiene-dlq")["QueueUrl"]
        queue_url = sqs.create_queue(QueueName="hygiene")["QueueUrl"]
        monkeypatch.setenv("METRICBATCH_DLQ_URL", dlq_url)
        monkeypatch.setenv("METRICBATCH_QUEUE_URL", queue_url)
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MetricBatch")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "metricbatch-hygiene")
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
        from metricbatch.batcher import handler as batcher_lambda

        function = batcher_lambda.BatcherFunction()
        # moto accepts what CloudWatch refuses: every PutMetricData the handler sends passes the strict check first.
        checked: list[int] = []

        def strict(request: Any, **_: Any) -> None:
            raw = request.body if isinstance(request.body, bytes) else request.body.encode()
            validate_put_metric_data(json.loads(raw), len(raw))
            checked.append(len(raw))

        function.client("cloudwatch").meta.events.register("before-send.cloudwatch.PutMetricData", strict)
        queue_arn = "arn:aws:sqs:us-east-1:123456789012:hygiene"
        messages = [
            {"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": body, "Attributes": {}}
            for i, body in enumerate(_bodies())
        ]
        event = {"Records": [build_record(m, queue_arn=queue_arn, region="us-east-1") for m in messages]}
        context = LambdaContext(function_name="batcher", memory_mb=256, timeout_seconds=30, region="us-east-1")

        # WHEN the batch is handled
        response = function(event, context)

        # THEN the work was done (the bad parts are in the DLQ) ...
        assert response == {"batchItemFailures": []}
        assert checked, "the good metrics were published, through the strict check"
        dlq_depth = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        assert dlq_depth["Attributes"]["ApproximateNumberOfMessages"] == "2"
    # ... and no log line, stdout (Powertools JSON, EMF) included, carries payload or credentials
    output = capfd.readouterr()
    _assert_clean(caplog.records, output.out + output.err)
    # (the search had something to search: the set-asides were logged as JSON lines, and so was the batch summary)
    logged = [str(json.loads(line).get("message", "")) for line in output.out.splitlines() if line.strip()]
    assert any("setting aside" in m for m in logged)
    assert "batch done" in logged


# CloudWatch's own error messages echo the offending value: a rejection must not carry it into a log line.
REJECTION = client_error(
    "InvalidParameterValue", message=f"The value {VALUE_MARKER} for parameter MetricData.member.1.Value is invalid."
)


@pytest.mark.parametrize(
    ("cloudwatch", "took_the_path"),
    [
        (FakeCloudWatch(always=throttling()), lambda report: report.put_metric_data_retries > 0),
        (FakeCloudWatch(always=connection_error()), lambda report: report.put_metric_data_retries > 0),
        # 1 sample invalid at the edge + 2 refused by CloudWatch value by value (the values message; the first
        # message fails whole before publishing: its invalid part could not reach the DLQ)
        (FakeCloudWatch(always=REJECTION), lambda report: report.metrics_rejected == 1 + 2),
    ],
    ids=["throttled", "unreachable", "rejecting"],
)
def test_batcher_failure_paths_log_no_payload(
    cloudwatch: FakeCloudWatch, took_the_path: Callable[[BatchReport], bool], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN CloudWatch failing (throttling, unreachable, or rejecting every datum with a message that names the
    # value) and SQS refusing every re-queue and set-aside
    caplog.set_level(logging.INFO)
    sqs = FakeSqs(raise_for=lambda url: throttling())
    config = BatcherConfig(dlq_url="https://fake/dlq", queue_url="https://fake/q")
    batcher = MetricBatcher(config, cloudwatch=cloudwatch, sqs=sqs, sleep=lambda s: None, time_left=lambda: 5.0)
    for i, body in enumerate(_bodies()):
        batcher.add_record(f"m-{i}", body)
    # WHEN it finishes: errors and warnings are logged
    failed = batcher.finish()
    # THEN the failure path named by the case was taken (retries, or datums refused one by one) ...
    assert took_the_path(batcher.report), batcher.report
    # ... records fail (SQS redelivers them), and the log says why without the payload
    assert failed
    assert any(r.levelno >= logging.WARNING for r in caplog.records)
    _assert_clean(caplog.records)


def test_producer_drops_and_send_errors_log_no_payload(
    make_producer: ProducerFactory, no_backoff: RecordedSleeps, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a producer whose SQS and fallback CloudWatch both fail
    caplog.set_level(logging.INFO)
    producer = make_producer(
        sqs_client=FakeSqs(raise_for=lambda url: connection_error()),
        cloudwatch_client=FakeCloudWatch(always=throttling()),
        sleep=no_backoff,
    )
    # WHEN it is sent metrics and flushed
    for _ in range(5):
        producer.send_metric("Latency", VALUE_MARKER, unit="Milliseconds", dimensions={"Customer": DIM_MARKER})
    producer.flush(timeout=5)
    producer.close(timeout=5)
    # THEN the drops are logged and counted, without values or dimension values
    assert producer.stats()["dropped"] == 5
    assert any(r.levelno >= logging.ERROR for r in caplog.records)
    _assert_clean(caplog.records)


def test_invalid_metric_errors_name_the_rule_not_other_dimensions() -> None:
    # The exception text goes to the caller (not a log); it names the broken field only.
    from metricbatch.exceptions import InvalidMetricError
    from metricbatch.wire import parse_metric

    raw: dict[str, Any] = {"namespace": "N", "name": "n", "value": "x", "dimensions": {"Customer": DIM_MARKER}}
    with pytest.raises(InvalidMetricError) as caught:
        parse_metric(raw, time.time(), time.time())
    assert DIM_MARKER not in str(caught.value)

"""The Lambda handler module: no side effects on import; the sandbox's state is built by the first invocation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, ParamValidationError

from metricbatch.aws.retry import error_code
from metricbatch.batcher.handler import BatcherFunction, create_client
from metricbatch.batcher.self_metrics import (
    API_CALLS_SAVED,
    METRICS_PUBLISHED,
    METRICS_RECEIVED,
    PUT_METRIC_DATA_CALLS,
    PUT_METRIC_DATA_RETRIES,
)

from ..fakes import FakeCloudWatch, FakeSqs, throttling
from ..producer.emf_spec import schema_errors

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_handler_creates_no_logger_and_touches_no_logging_configuration() -> None:
    probe = (
        "import json, logging; import lambdas.batcher.handler; "
        "library = logging.getLogger('metricbatch'); "
        "print(json.dumps({'loggers': sorted(logging.root.manager.loggerDict), "
        "'library_handlers': len(library.handlers), 'propagate': library.propagate, "
        "'root_handlers': len(logging.root.handlers)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "probe-service"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    state = json.loads(done.stdout.splitlines()[-1])
    # Powertools' Logger() names its logger after the service: it must not exist before the first invocation
    assert "probe-service" not in state["loggers"]
    assert state["library_handlers"] == 0 and state["propagate"] is True
    assert state["root_handlers"] == 0
    assert done.stdout.strip().count("\n") == 0  # nothing printed on import


def _answered(client: Any, status: int, body: bytes) -> list[Any]:
    """Short-circuit the client's HTTP: every request gets this answer; returns the requests sent."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield body

        def read(self, *_: Any) -> bytes:
            return body

    sent: list[Any] = []

    def respond(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, status, headers, _Raw())

    client.meta.events.register("before-send", respond)
    return sent


@pytest.fixture
def aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.mark.usefixtures("aws_settings")
def test_the_cloudwatch_client_makes_one_attempt_so_the_batcher_alone_decides_retries() -> None:
    # The SDK's backoff ignores the invocation's deadline; CloudWatchPublisher retries within it instead.
    client = create_client("cloudwatch")
    sent = _answered(client, 400, b'{"__type":"Throttling","message":"Rate exceeded"}')
    with pytest.raises(ClientError) as caught:
        client.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert error_code(caught.value) == "Throttling"
    assert len(sent) == 1


@pytest.mark.usefixtures("aws_settings")
def test_the_cloudwatch_client_skips_gzip_and_client_side_validation() -> None:
    # Every request was validated and sized by the batcher; both cost Lambda time on every call.
    client = create_client("cloudwatch")
    sent = _answered(client, 200, b"{}")
    big = [{"MetricName": f"m{i}", "Values": [float(v) for v in range(100)]} for i in range(20)]  # > 10 KB
    client.put_metric_data(Namespace="N", MetricData=big)
    assert "Content-Encoding" not in sent[0].headers
    with pytest.raises(Exception) as caught:  # an invalid parameter reaches the serializer unchecked
        client.put_metric_data(Namespace="N", MetricData="not a list")
    assert not isinstance(caught.value, ParamValidationError)


def _sqs_event(*bodies: str) -> dict[str, Any]:
    from metricbatch.worker.poller import build_record

    messages = [
        {"MessageId": f"m-{i}-{uuid.uuid4()}", "ReceiptHandle": f"r-{i}", "Body": body, "Attributes": {}}
        for i, body in enumerate(bodies)
    ]
    arn = "arn:aws:sqs:us-east-1:123456789012:unit"
    return {"Records": [build_record(m, queue_arn=arn, region="us-east-1") for m in messages]}


def _context(timeout: float = 30) -> Any:
    from metricbatch.worker.poller import LambdaContext

    return LambdaContext(function_name="batcher", memory_mb=256, timeout_seconds=timeout, region="us-east-1")


def _body(*values: float) -> str:
    now = time.time()
    metrics = [{"namespace": "Unit/Handler", "name": "Latency", "value": v, "timestamp": now} for v in values]
    return json.dumps({"v": 1, "metrics": metrics})


def _emf_lines(output: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    assert [schema_errors(document) for document in documents] == [[]] * len(documents)  # the official schema
    return documents


@pytest.fixture
def batcher_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICBATCH_DLQ_URL", "https://sqs.fake/123456789012/dlq")
    monkeypatch.setenv("METRICBATCH_QUEUE_URL", "https://sqs.fake/123456789012/q")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "metricbatch-unit")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MetricBatch")


@pytest.mark.usefixtures("batcher_env")
def test_when_every_record_fails_the_batch_fails_whole_and_self_metrics_go_out_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN CloudWatch throttling throughout and SQS refusing the re-queue: no record can be settled
    clients = {"cloudwatch": FakeCloudWatch(always=throttling()), "sqs": FakeSqs(raise_for=lambda url: throttling())}
    function = BatcherFunction(client_factory=clients.__getitem__)
    # WHEN a batch arrives
    with pytest.raises(BatchProcessingError):
        function(_sqs_event(_body(1.0, 2.0), _body(3.0)), _context(timeout=3))
    # THEN (Powertools' contract: Lambda retries the whole batch) the invocation's self-metrics went out exactly once
    (emf,) = _emf_lines(capsys.readouterr().out)
    assert emf[METRICS_RECEIVED] == [3.0]
    assert emf[METRICS_PUBLISHED] == [0.0] and emf[API_CALLS_SAVED] == [0.0]
    assert emf[PUT_METRIC_DATA_RETRIES][0] > 0


@pytest.mark.usefixtures("batcher_env")
def test_a_partial_failure_answers_with_the_failed_records_and_self_metrics_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN SQS refuses the re-queue of one namespace's datums only (CloudWatch throttles that namespace)
    cloudwatch = FakeCloudWatch(fail_with=lambda p: throttling() if p["Namespace"] == "Unit/Down" else None)
    clients = {"cloudwatch": cloudwatch, "sqs": FakeSqs(raise_for=lambda url: throttling())}
    function = BatcherFunction(client_factory=clients.__getitem__)
    down = json.dumps({"v": 1, "metrics": [{"namespace": "Unit/Down", "name": "L", "value": 1.0}]})
    # WHEN a batch of one good and one unpublishable message arrives
    event = _sqs_event(_body(5.0), down)
    response = function(event, _context(timeout=3))
    # THEN only the unpublishable record is reported failed, and self-metrics went out once
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    (emf,) = _emf_lines(capsys.readouterr().out)
    assert emf[METRICS_PUBLISHED] == [1.0] and emf[PUT_METRIC_DATA_CALLS] == [1.0]


# Run in a fresh process: how logging is set up there is what Lambda gets (no pytest handlers, no earlier imports).
_FRESH_INVOCATION = r"""
import json, time
from botocore.awsrequest import AWSResponse, HTTPHeaders
from metricbatch.batcher.handler import BatcherFunction, create_client
from metricbatch.worker.poller import LambdaContext, build_record

class Raw:
    def __init__(self, body): self.body = body
    def stream(self, **_): yield self.body
    def read(self, *_): return self.body

ANSWERS = {  # CloudWatch throttles; SQS says the queue does not exist (re-queue and set-aside fail)
    "cloudwatch": (400, b'{"__type":"Throttling","message":"Rate exceeded"}'),
    "sqs": (400, b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no such queue"}'),
}

def client(service):
    made = create_client(service)
    status, body = ANSWERS[service]
    def respond(request, **_):
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, status, headers, Raw(body))
    made.meta.events.register("before-send", respond)
    return made

now = time.time()
good = {"namespace": "Fresh/Logs", "name": "Latency", "value": 1.5, "timestamp": now}
bad = dict(good, unit="Parsecs")
bodies = [json.dumps({"v": 1, "metrics": [good]}), json.dumps({"v": 1, "metrics": [bad]})]
messages = [{"MessageId": f"m-{i}", "ReceiptHandle": "r", "Body": body, "Attributes": {}}
            for i, body in enumerate(bodies)]
event = {"Records": [build_record(m, queue_arn="arn:aws:sqs:us-east-1:123456789012:q", region="us-east-1")
                     for m in messages]}
context = LambdaContext(function_name="batcher", memory_mb=256, timeout_seconds=2.6, region="us-east-1")
try:
    BatcherFunction(client_factory=client)(event, context)
except Exception as exc:
    assert type(exc).__name__ == "BatchProcessingError", exc
"""


def test_every_log_line_of_an_invocation_is_powertools_json_with_the_invocation_keys() -> None:
    # GIVEN a fresh process (as Lambda starts one) running the handler on a batch that sets a metric aside, cannot
    # publish (CloudWatch throttles) and cannot re-queue (SQS refuses): INFO, WARNING and ERROR lines from
    # metricbatch's own modules
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_INVOCATION],
        cwd=REPO_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "METRICBATCH_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
            "METRICBATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "POWERTOOLS_SERVICE_NAME": "metricbatch-fresh",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # THEN every stdout line is JSON (Powertools log lines and the EMF line), nothing went to stderr as text ...
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.stderr.strip() == ""
    # ... and every line metricbatch's modules logged carries the logger's name and the invocation's keys
    library = [line for line in lines if str(line.get("name", "")).startswith("metricbatch.")]
    levels = {line["level"] for line in library}
    assert {"INFO", "WARNING", "ERROR"} <= levels, lines
    for line in library:
        assert line["service"] == "metricbatch-fresh"
        assert line["function_name"] == "batcher" and line["function_request_id"]
    assert any("re-queueing" in line["message"] for line in library)
    assert sum('"_aws"' in json.dumps(line) for line in lines) == 1  # the self-metrics, once

"""The Lambda handler module: no side effects on import; the sandbox's state is built by the first invocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from metricbatch.aws.retry import error_code
from metricbatch.batcher.handler import create_client

REPO_ROOT = Path(__file__).resolve().parents[2]


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

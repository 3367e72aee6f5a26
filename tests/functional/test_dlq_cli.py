"""`metricbatch dlq inspect|redrive` against the embedded AWS, with a DLQ filled by the real pipeline."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from metricbatch.cli import main
from metricbatch.cli.dlq.inspection import REDRIVE_POLICY_REASON, UNKNOWN_ORIGIN, inspect_dlq, message_origin
from metricbatch.cli.dlq.pacing import stop_on_sigint
from metricbatch.cli.dlq.redrive import redrive_loop
from metricbatch.deploy import settings_for
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.wire import ATTR_RULE

EXPECTED_BY_RULE = {
    "body.json": 1,
    "envelope.version": 1,
    "value.type": 1,
    "namespace.not_allowed": 1,
    "cloudwatch.unavailable": 1,
    REDRIVE_POLICY_REASON: 1,
}
EXPECTED_DATUMS_BY_RULE = {"value.type": 1, "dimensions.count": 1, "namespace.not_allowed": 1}


@pytest.fixture
def ns() -> str:
    return f"Shop/Dlq{uuid.uuid4().hex[:8]}"


def _metric(ns: str, name: str, value: Any = 1.0, **extra: Any) -> dict[str, Any]:
    return {"namespace": ns, "name": name, "value": value, "timestamp": time.time(), **extra}


def _populate(pipeline: LocalPipeline, ns: str) -> None:
    """Poison the queue in every way the batcher and the redrive policy know, and drain it into the DLQ."""
    sqs, queue = pipeline.sqs, pipeline.queue_url
    too_many_dimensions = {f"D{i}": "x" for i in range(31)}
    for body in (
        "this is not json",
        json.dumps({"v": 2, "metrics": []}),
        json.dumps(
            {
                "v": 1,
                "metrics": [
                    _metric(ns, "Ok"),
                    _metric(ns, "Bad", "12"),
                    _metric(ns, "Wide", dimensions=too_many_dimensions),
                ],
            }
        ),
        json.dumps({"v": 1, "metrics": [{"namespace": "Other/Team", "name": "X", "value": 1}]}),
    ):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    pipeline.drain(timeout=30)

    # A re-queued message on its last attempt while CloudWatch is down: set aside as cloudwatch.unavailable.
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", kind="unavailable"))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"v": 1, "attempt": 5, "metrics": [_metric(ns, "Late")]}))
    pipeline.drain(timeout=30)
    pipeline.aws.faults.clear()

    # A record the handler fails (no DLQ configured to set it aside): after maxReceiveCount (1) receives, the
    # queue's redrive policy moves it to the DLQ, without attributes. Visibility 0: the failed record is back at once.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "0"})
    with pytest.MonkeyPatch.context() as env:
        env.delenv("METRICBATCH_DLQ_URL")
        sqs.send_message(QueueUrl=queue, MessageBody="poison that cannot even be set aside")
        pipeline.drain(timeout=30)
    assert pipeline.queue_depth() == 0
    assert pipeline.dlq_depth() == sum(EXPECTED_BY_RULE.values())
    # The redrive policy stays (maxReceiveCount 1): inspect tells a moved message by it where SQS's
    # DeadLetterQueueSourceArn is missing (moto). A message read twice from the queue from here on is moved again.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "30"})


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch, ns: str) -> Iterator[LocalPipeline]:
    settings = settings_for("dev").with_overrides({"max_receive_count": 1})
    with (
        LocalPipeline(
            settings=settings,
            window_seconds=0,
            allowed_namespaces=["Shop/"],
            function_timeout_seconds=2.5,  # CloudWatch outages give up after 0.5 s (2 s are kept in reserve)
            queue_name=f"dlq-cli-{uuid.uuid4().hex[:8]}",
        ) as pipe,
        monkeypatch.context() as env,  # undone before the pipeline restores its own environment
    ):
        for key, value in pipe.env().items():
            env.setenv(key, value)
        _populate(pipe, ns)
        yield pipe
        pipe.aws.reset()  # moto's backends are process-wide: leave no self-metrics for the next module to read


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _bodies(sqs: Any, url: str, attributes: list[dict[str, Any]] | None = None) -> Counter[str]:
    """Every body in a queue (received, then made visible again); message attributes go to ``attributes``."""
    bodies: Counter[str] = Counter()
    handles = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            bodies[m["Body"]] += 1
            if attributes is not None:
                attributes.append(m.get("MessageAttributes", {}))
            handles.append(m["ReceiptHandle"])
    for i in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(j), "ReceiptHandle": h, "VisibilityTimeout": 0} for j, h in enumerate(handles[i : i + 10])
            ],
        )
    return bodies


@pytest.fixture
def dev_stack(pipeline: LocalPipeline) -> Iterator[str]:
    """A MetricBatching-dev stack whose outputs name this pipeline's queues (deleted afterwards)."""
    _create_stack(pipeline, "dev")
    yield "dev"
    pipeline.aws.client("cloudformation").delete_stack(StackName=settings_for("dev").stack_name)


def _create_stack(pipeline: LocalPipeline, env: str) -> None:
    template = {
        "Resources": {
            "Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"marker-{uuid.uuid4().hex[:8]}"}}
        },
        "Outputs": {
            "QueueUrl": {"Value": pipeline.queue_url},
            "DeadLetterQueueUrl": {"Value": pipeline.dlq_url},
        },
    }
    cloudformation = pipeline.aws.client("cloudformation")
    cloudformation.create_stack(StackName=settings_for(env).stack_name, TemplateBody=json.dumps(template))


def test_inspect_counts_messages_by_rule_and_leaves_them_visible(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a DLQ holding every shape the pipeline sets aside
    # WHEN inspecting it
    rc = main(["dlq", "inspect", "--queue-url", pipeline.dlq_url, "--json", "--samples", "3"])
    # THEN the counts by rule match what was poisoned, with samples, and nothing is hidden or deleted
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["by_rule"] == EXPECTED_BY_RULE
    assert report["datums_by_rule"] == EXPECTED_DATUMS_BY_RULE
    assert report["inspected"] == 6
    assert len(report["samples"]) == 3
    assert all(s["message_id"] and s["rule"] for s in report["samples"])
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 6


def test_a_message_sent_straight_to_the_dlq_is_of_unknown_origin(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a message someone sent to the DLQ directly: no metricbatch.rule, never received from the source queue
    pipeline.sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody="sent here by hand")
    # WHEN inspecting
    assert main(["dlq", "inspect", "--queue-url", pipeline.dlq_url, "--json", "--samples", "10"]) == 0
    report = json.loads(capsys.readouterr().out)
    # THEN it is not passed off as moved by the redrive policy; the message that was moved still is
    assert report["by_rule"] == {**EXPECTED_BY_RULE, UNKNOWN_ORIGIN: 1}
    assert [s["rule"] for s in report["samples"] if s["body"] == "sent here by hand"] == [UNKNOWN_ORIGIN]


@pytest.mark.parametrize(
    ("attributes", "max_receive_count", "origin"),
    [
        ({"DeadLetterQueueSourceArn": "arn:aws:sqs:us-east-1:123456789012:q", "ApproximateReceiveCount": "1"}, 5,
         REDRIVE_POLICY_REASON),  # what SQS sets on a message its redrive policy moved
        ({"ApproximateReceiveCount": "6"}, 5, REDRIVE_POLICY_REASON),  # received 5 times before this look
        ({"ApproximateReceiveCount": "5"}, 5, UNKNOWN_ORIGIN),
        ({"ApproximateReceiveCount": "9"}, None, UNKNOWN_ORIGIN),  # no source queue found: no policy to judge by
        ({}, 1, UNKNOWN_ORIGIN),
    ],
)  # fmt: skip
def test_message_origin_needs_evidence_of_a_redrive(
    attributes: dict[str, str], max_receive_count: int | None, origin: str
) -> None:
    message = {"MessageId": "m", "Body": "x", "Attributes": attributes}
    assert message_origin(message, max_receive_count) == origin
    tagged = {**message, "MessageAttributes": {ATTR_RULE: {"DataType": "String", "StringValue": "body.json"}}}
    assert message_origin(tagged, max_receive_count) == "body.json"


def test_inspect_text_report_truncates_bodies(
    pipeline: LocalPipeline, ns: str, capsys: pytest.CaptureFixture[str]
) -> None:
    big = json.dumps({"v": 1, "metrics": [_metric(ns, "Big", "x" * 5000)]})
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=big)
    pipeline.drain(timeout=30)

    rc = main(["dlq", "inspect", "--queue-url", pipeline.dlq_url, "--samples", "10"])

    out = capsys.readouterr().out
    assert rc == 0
    assert "value.type" in out and REDRIVE_POLICY_REASON in out and "body.json" in out
    assert "x" * 400 not in out  # bodies are truncated
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 7


def test_inspect_finds_the_dlq_from_the_environments_stack(
    pipeline: LocalPipeline, dev_stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["dlq", "inspect", "--env", "dev", "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["by_rule"] == EXPECTED_BY_RULE


def test_inspect_of_a_missing_stack_fails_cleanly(pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["dlq", "inspect", "--env", "staging"])
    assert rc == 2
    assert "MetricBatching-staging" in capsys.readouterr().err


def test_redrive_loop_moves_every_message_back_with_its_body(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _bodies(pipeline.sqs, pipeline.dlq_url)
    assert sum(before.values()) == 6

    rc = main(
        ["dlq", "redrive", "--queue-url", pipeline.dlq_url, "--to", pipeline.queue_url, "--loop", "--rate", "500"]
    )

    assert rc == 0
    assert "moved 6 message(s)" in capsys.readouterr().out
    assert pipeline.dlq_depth() == 0
    attributes: list[dict[str, Any]] = []
    assert _bodies(pipeline.sqs, pipeline.queue_url, attributes) == before
    # metricbatch.* attributes are dropped: the batcher judges the message afresh
    assert len(attributes) == 6
    assert not any(ATTR_RULE in a for a in attributes)


def test_redrive_with_env_falls_back_to_the_loop_when_move_tasks_are_unavailable(
    pipeline: LocalPipeline, dev_stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the stack outputs and an endpoint without StartMessageMoveTask (moto)
    before = _bodies(pipeline.sqs, pipeline.dlq_url)
    # WHEN redriving by environment
    rc = main(["dlq", "redrive", "--env", "dev", "--rate", "500"])
    # THEN everything is back in the source queue
    captured = capsys.readouterr()
    assert rc == 0
    assert "one by one" in captured.err
    assert pipeline.dlq_depth() == 0
    assert _bodies(pipeline.sqs, pipeline.queue_url) == before


def test_redrive_of_redriven_data_lands_where_the_batcher_puts_it(pipeline: LocalPipeline, ns: str) -> None:
    # Redriving after the outage: the re-queued datum is published; poison goes back to the DLQ, nothing is lost.
    main(["dlq", "redrive", "--queue-url", pipeline.dlq_url, "--to", pipeline.queue_url, "--loop", "--rate", "500"])
    pipeline.drain(timeout=30)
    assert pipeline.read_series(ns, "Late")[1] == 1
    assert pipeline.queue_depth() == 0
    assert pipeline.dlq_depth() == 6 - 1 + 0  # "Late" was published; the five others are set aside again


def test_redrive_with_max_moves_only_that_many_and_loses_nothing(
    pipeline: LocalPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _bodies(pipeline.sqs, pipeline.dlq_url)

    rc = main(["dlq", "redrive", "--queue-url", pipeline.dlq_url, "--to", pipeline.queue_url, "--max", "1"])

    assert rc == 0
    assert "moved 1 message(s)" in capsys.readouterr().out
    # the rest is visible again at once, not hidden for a visibility timeout
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 5
    after = _bodies(pipeline.sqs, pipeline.dlq_url) + _bodies(pipeline.sqs, pipeline.queue_url)
    assert after == before


@pytest.fixture
def sigint_deliverable() -> Iterator[Any]:
    """The SIGINT disposition the test starts from: the launcher's, or Python's own handler for the duration when
    the launcher ignores SIGINT (``nohup``, a background job of a non-interactive shell, some CI runners)."""
    found = signal.getsignal(signal.SIGINT)
    if found is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, found)


def test_sigint_finishes_the_current_message_then_stops(pipeline: LocalPipeline, sigint_deliverable: Any) -> None:
    before = _bodies(pipeline.sqs, pipeline.dlq_url)

    class InterruptingSqs:
        """The real client; the first send is followed by Ctrl-C."""

        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def send_message(self, **params: Any) -> Any:
            response = self._client.send_message(**params)
            os.kill(os.getpid(), signal.SIGINT)
            return response

    stop = threading.Event()
    with stop_on_sigint(stop):
        result = redrive_loop(InterruptingSqs(pipeline.sqs), pipeline.dlq_url, pipeline.queue_url, rate=1000, stop=stop)

    assert result.moved == 1
    assert result.interrupted
    assert signal.getsignal(signal.SIGINT) is sigint_deliverable  # the handler it found is back
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 5
    assert _bodies(pipeline.sqs, pipeline.dlq_url) + _bodies(pipeline.sqs, pipeline.queue_url) == before


def test_a_failing_send_deletes_nothing(pipeline: LocalPipeline) -> None:
    before = _bodies(pipeline.sqs, pipeline.dlq_url)

    class RefusingSqs:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def send_message(self, **params: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    result = redrive_loop(RefusingSqs(pipeline.sqs), pipeline.dlq_url, pipeline.queue_url, rate=1000)

    assert (result.moved, result.failed) == (0, 1)
    assert "left in the DLQ" in result.last_error
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 6
    assert _bodies(pipeline.sqs, pipeline.dlq_url) == before


def test_inspect_dlq_stops_at_max(pipeline: LocalPipeline) -> None:
    summary = inspect_dlq(pipeline.sqs, pipeline.dlq_url, samples=0, max_messages=2)
    assert summary.inspected == 2
    assert summary.samples == []
    assert _visible(pipeline.sqs, pipeline.dlq_url) == 6

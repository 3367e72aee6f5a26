"""End to end over HTTP against the embedded AWS: the demo, the poller's semantics, `send` and `local`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from e2e_support import CLI, child_env, read_local_exports, start_local

from metricbatch.batcher.self_metrics import METRICS_RECEIVED
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.limits import PRICE_PUT_METRIC_DATA_PER_REQUEST
from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller


@pytest.fixture
def pipeline(deployed_assembly: Path) -> Iterator[LocalPipeline]:
    # the batcher is the dev stack's package under awslambdaric (a sandbox starts when the first batch needs it)
    with LocalPipeline(queue_name=f"e2e-{time.monotonic_ns()}", assembly=deployed_assembly) as p:
        yield p


class RecordingHandler:
    """A handler that records its events and fails what it is told to."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_ids: set[str] = set()
        self.fail_bodies: set[str] = set()
        self.raise_next = False
        self.malformed_next = False

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        if self.raise_next:
            self.raise_next = False
            raise RuntimeError("boom")
        if self.malformed_next:
            self.malformed_next = False
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["messageId"] in self.fail_ids or r["body"] in self.fail_bodies
        ]
        return {"batchItemFailures": failures}


def _poller(pipeline: LocalPipeline, handler: RecordingHandler, **config: Any) -> SqsEventSourcePoller:
    return SqsEventSourcePoller(pipeline.sqs, pipeline.queue_url, handler, config=PollerConfig(**config))


def _send_bodies(pipeline: LocalPipeline, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        pipeline.sqs.send_message_batch(
            QueueUrl=pipeline.queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
        )


def test_demo_cli_reports_zero_loss_and_at_most_100_calls(deployed_assembly: Path, tmp_path: Path) -> None:
    # GIVEN a fresh process WHEN the README's demo runs with --json, its batcher the synthesized package
    dashboard = tmp_path / "dashboard.png"
    result = subprocess.run(
        [
            *CLI,
            "demo",
            "--metrics",
            "20000",
            "--json",
            "--assembly",
            str(deployed_assembly),
            "--dashboard",
            str(dashboard),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=child_env({}),
        check=False,
    )
    # THEN the last stdout line is the report and nothing was lost
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for field in (
        "metrics_sent",
        "metrics_delivered",
        "metrics_lost",
        "put_metric_data_calls",
        "sqs_send_requests",
        "lambda_invocations",
        "dlq_messages",
    ):
        assert field in report
    assert report["metrics_sent"] == 20000
    assert report["metrics_delivered"] == 20000
    assert report["metrics_lost"] == 0
    assert report["dlq_messages"] == 0
    assert 1 <= report["put_metric_data_calls"] <= 100
    assert report["api_calls_saved"] == 20000 - report["put_metric_data_calls"]  # the batcher's definition
    assert report["series_exact"] == report["series"]
    assert report["invalid_requests"] == 0
    assert "savings report" in result.stdout
    # AND the report says it ran the deployed package, as Lambda runs it
    assert report["batcher"] == "deployed-package"
    assert report["lambda_cold_starts"] >= 1 and report["lambda_timeouts"] == 0
    assert f"batcher: ran the deployed package {deployed_assembly}" in result.stdout
    # AND it ended by rendering the synthesized dashboard and saying where
    assert f"dashboard: {dashboard}" in result.stdout
    assert report["dashboard"] == str(dashboard)
    assert dashboard.read_bytes().startswith(b"\x89PNG")
    # AND the picture shows the report's numbers: every metric published once, the calls the gateway counted
    totals = report["dashboard_values"]["Over the selected time range"]
    assert totals["Metrics published"] == report["metrics_delivered"]
    assert totals["PutMetricData calls"] == report["put_metric_data_calls"]
    assert totals["API calls saved"] == report["api_calls_saved"]
    dollars = report["dashboard_values"]["Dollars over the selected time range"]
    saved_dollars = report["api_calls_saved"] * PRICE_PUT_METRIC_DATA_PER_REQUEST
    assert dollars["Saved on PutMetricData ($)"] == pytest.approx(saved_dollars, rel=1e-9)


def test_poller_builds_lambda_records_and_honours_batch_size(pipeline: LocalPipeline) -> None:
    # GIVEN 45 messages on the queue and a batch size of 20
    handler = RecordingHandler()
    bodies = [f"m{i}" for i in range(45)]
    _send_bodies(pipeline, bodies)
    poller = _poller(pipeline, handler, batch_size=20, window_seconds=2.0)
    # WHEN the poller drains the queue
    poller.drain(timeout=30, window_seconds=2.0)
    # THEN no batch exceeds 20, every message was handled once and deleted
    sizes = [len(e["Records"]) for e in handler.events]
    assert max(sizes) == 20
    assert sum(sizes) == 45
    assert sorted(r["body"] for e in handler.events for r in e["Records"]) == sorted(bodies)
    assert pipeline.queue_depth() == 0
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert pipeline.queues is not None
    assert record["eventSourceARN"] == pipeline.queues.queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(record["attributes"]["SentTimestamp"]) > 0
    assert {"messageId", "receiptHandle", "body", "md5OfBody", "messageAttributes"} <= record.keys()


def test_poller_waits_for_the_window_when_the_batch_is_not_full(pipeline: LocalPipeline) -> None:
    # GIVEN 3 messages and a window of 1.5 s with batch size 20
    handler = RecordingHandler()
    _send_bodies(pipeline, ["a", "b", "c"])
    poller = _poller(pipeline, handler, batch_size=20, window_seconds=1.5)
    # WHEN one batch is collected
    started = time.monotonic()
    messages = poller.collect_batch(idle_timeout=5)
    waited = time.monotonic() - started
    # THEN it holds all three, gathered over the window rather than returned at the first receive
    assert len(messages) == 3
    assert waited >= 1.4


def test_partial_failures_are_redelivered_and_reach_the_dlq_after_max_receives(pipeline: LocalPipeline) -> None:
    # GIVEN a handler that always fails one record, and a queue with a 1 s visibility timeout
    pipeline.sqs.set_queue_attributes(QueueUrl=pipeline.queue_url, Attributes={"VisibilityTimeout": "1"})
    handler = RecordingHandler()
    handler.fail_bodies.add("poison")
    _send_bodies(pipeline, ["good-1", "poison", "good-2"])
    poller = _poller(pipeline, handler, batch_size=20, window_seconds=0.2)
    # WHEN the poller keeps polling past maxReceiveCount
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pipeline.dlq_depth() == 0:
        poller.poll_once(idle_timeout=1.5)
    # THEN the good records were deleted once, the poison one was redelivered and finally moved to the DLQ
    seen = [r["body"] for e in handler.events for r in e["Records"]]
    assert seen.count("good-1") == 1
    assert seen.count("good-2") == 1
    assert seen.count("poison") == pipeline.settings.max_receive_count
    receive_counts = [
        int(r["attributes"]["ApproximateReceiveCount"])
        for e in handler.events
        for r in e["Records"]
        if r["body"] == "poison"
    ]
    assert receive_counts == list(range(1, pipeline.settings.max_receive_count + 1))
    dlq = pipeline.sqs.receive_message(QueueUrl=pipeline.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dlq] == ["poison"]


@pytest.mark.parametrize("failure", ["exception", "malformed"])
def test_an_exception_or_malformed_response_fails_the_whole_batch(pipeline: LocalPipeline, failure: str) -> None:
    # GIVEN a handler that raises (or answers nonsense) on its first invocation
    pipeline.sqs.set_queue_attributes(QueueUrl=pipeline.queue_url, Attributes={"VisibilityTimeout": "1"})
    handler = RecordingHandler()
    if failure == "exception":
        handler.raise_next = True
    else:
        handler.malformed_next = True
    _send_bodies(pipeline, ["x", "y"])
    poller = _poller(pipeline, handler, batch_size=20, window_seconds=0.2)
    # WHEN it is invoked, and the poller polls again after the visibility timeout
    assert poller.poll_once(idle_timeout=2)
    assert poller.stats.deleted == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pipeline.queue_depth() > 0:
        poller.poll_once(idle_timeout=1.5)
    # THEN both records came back (nothing was deleted the first time) and were then processed
    bodies = [sorted(r["body"] for r in e["Records"]) for e in handler.events]
    assert bodies[0] == ["x", "y"]
    assert sorted(b for batch in bodies[1:] for b in batch) == ["x", "y"]
    assert pipeline.queue_depth() == 0


def test_send_command_reaches_cloudwatch(pipeline: LocalPipeline) -> None:
    # GIVEN the local pipeline's exports WHEN `metricbatch send` runs in another process
    result = subprocess.run(
        [*CLI, "send", "Orders", "3", "--unit", "Count", "--namespace", "E2E/Send", "--dimension", "Channel=web"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(pipeline.env()),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "queued" in result.stdout
    # THEN after the poller drains, CloudWatch reports the metric
    pipeline.drain()
    assert pipeline.read_series("E2E/Send", "Orders", {"Channel": "web"}) == (3.0, 1.0)


def test_send_command_rejects_an_invalid_metric_at_the_edge(pipeline: LocalPipeline) -> None:
    result = subprocess.run(
        [*CLI, "send", "Orders", "1", "--unit", "Parsecs", "--namespace", "E2E/Send"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(pipeline.env()),
        check=False,
    )
    assert result.returncode == 2
    assert "unit.unknown" in result.stderr
    assert pipeline.queue_depth() == 0


def test_local_command_serves_a_producer_in_another_process_and_stops_cleanly(deployed_assembly: Path) -> None:
    # GIVEN `metricbatch local` running with a short window, its batcher the synthesized package
    local = start_local("--window", "0.5", "--interval", "0.5", assembly=deployed_assembly)
    try:
        exports, _ = read_local_exports(local)
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        # WHEN a service in another process sends through the default producer and exits without flush()
        script = (
            "from metricbatch import send_metric\n"
            "for i in range(100):\n"
            "    send_metric('Requests', 1.0, unit='Count', dimensions={'Route': '/cart'})\n"
        )
        producer = subprocess.run(
            [sys.executable, "-c", script],
            env=child_env({**exports, "METRICBATCH_NAMESPACE": "E2E/Local"}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert producer.returncode == 0, producer.stderr
        # THEN the local pipeline delivers all 100 to its CloudWatch
        cloudwatch = boto3.client(
            "cloudwatch",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name=exports["AWS_REGION"],
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        total = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            points = cloudwatch.get_metric_statistics(
                Namespace="E2E/Local",
                MetricName="Requests",
                Dimensions=[{"Name": "Route", "Value": "/cart"}],
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(minutes=10),
                Period=86400,
                Statistics=["Sum"],
            )["Datapoints"]
            total = sum(p["Sum"] for p in points)
            if total >= 100:
                break
            time.sleep(0.5)
        assert total == 100.0
    finally:
        # AND Ctrl-C stops it cleanly
        local.send_signal(signal.SIGINT)
        _, stderr = local.communicate(timeout=30)
    assert local.returncode == 0, stderr[-2000:]
    assert "stopping" in stderr


def test_poll_command_runs_the_batcher_as_a_worker_and_stops_on_sigterm(pipeline: LocalPipeline) -> None:
    # GIVEN `metricbatch poll` as a long-lived worker against the pipeline's queue (any SQS endpoint would do)
    env = child_env(
        {
            **pipeline.env(),
            "METRICBATCH_DLQ_URL": pipeline.dlq_url,
            "POWERTOOLS_METRICS_NAMESPACE": "MetricBatch",
            "POWERTOOLS_SERVICE_NAME": "metricbatch-worker",
        }
    )
    worker = subprocess.Popen(
        [*CLI, "poll", "--queue-url", pipeline.queue_url, "--window", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # WHEN a service sends metrics to the queue
        producer = pipeline.producer(handle_sigterm=False)
        for value in (1.0, 2.0, 3.0):
            producer.send_metric("Jobs", value, unit="Count", namespace="E2E/Poll")
        assert producer.flush(timeout=30)
        producer.close()
        # THEN the worker publishes them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pipeline.read_series("E2E/Poll", "Jobs") != (6.0, 3.0):
            time.sleep(0.3)
        assert pipeline.read_series("E2E/Poll", "Jobs") == (6.0, 3.0)
    finally:
        # AND SIGTERM stops it cleanly
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr[-2000:]
    assert "stopped:" in stderr
    # its self-metrics went to stdout as EMF lines, for the CloudWatch agent
    assert any('"_aws"' in line and METRICS_RECEIVED in line for line in stdout.splitlines())


def test_drain_after_the_background_pollers_stopped_still_processes_the_queue(pipeline: LocalPipeline) -> None:
    # GIVEN background pollers that were started and stopped (as the demo does when its producers are done)
    handler = RecordingHandler()
    poller = _poller(pipeline, handler, batch_size=20, window_seconds=30)
    poller.start()
    poller.stop()
    # WHEN messages are on the queue and the poller drains
    _send_bodies(pipeline, ["late-1", "late-2"])
    poller.drain(timeout=20)
    # THEN they were handled: a stopped background loop must not stop foreground polling
    assert sorted(r["body"] for e in handler.events for r in e["Records"]) == ["late-1", "late-2"]
    assert pipeline.queue_depth() == 0

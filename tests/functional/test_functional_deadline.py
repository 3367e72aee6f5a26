"""A 3 s handler while CloudWatch throttles: answers in time, re-queues, nothing lost or doubled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from functional_support import Expected, calls, mismatches, peek, send_bodies, take_dlq, unique_namespace

from metricbatch.batcher.batcher import MAX_REQUEUE_ATTEMPTS
from metricbatch.batcher.self_metrics import MESSAGES_REQUEUED
from metricbatch.emulator.emf import EmfExtractor
from metricbatch.emulator.gateway import EMF_AGENT_MARK, Fault
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline
from metricbatch.env import SELF_METRICS_NAMESPACE
from metricbatch.worker.poller import SqsEventSourcePoller

FUNCTION_TIMEOUT = 3.0
PIPELINE_OPTIONS = {"function_timeout_seconds": FUNCTION_TIMEOUT}


@dataclass
class TimedHandler:
    """The real Lambda handler, timed: what Lambda would see of each invocation."""

    durations: list[float] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        from metricbatch.batcher.handler import handler

        started = time.monotonic()
        try:
            response = handler(event, context)
        finally:
            self.durations.append(time.monotonic() - started)
        self.responses.append(response)
        return response


@pytest.fixture
def timed(clean_pipeline: LocalPipeline) -> Iterator[tuple[SqsEventSourcePoller, TimedHandler]]:
    handler = TimedHandler()
    emf = EmfExtractor(clean_pipeline.aws.client("cloudwatch", user_agent_extra=EMF_AGENT_MARK))
    poller = SqsEventSourcePoller(
        clean_pipeline.sqs,
        clean_pipeline.queue_url,
        handler,
        config=clean_pipeline.poller_config,
        region=clean_pipeline.aws.region,
        emf_sink=emf,
    )
    yield poller, handler
    poller.stop()


def _self_metric(pipeline: LocalPipeline, name: str) -> float:
    return pipeline.read_series(SELF_METRICS_NAMESPACE, name, {"service": LOCAL_SERVICE_NAME})[0]


def test_throttled_handler_answers_in_time_requeues_and_everything_lands_once(
    clean_pipeline: LocalPipeline, timed: tuple[SqsEventSourcePoller, TimedHandler]
) -> None:
    pipeline = clean_pipeline
    poller, handler = timed
    namespaces = [unique_namespace("Deadline") for _ in range(3)]
    expected = Expected.empty()
    producer = pipeline.producer()
    for i in range(3000):
        namespace, dims = namespaces[i % 3], {"Shard": str(i % 10)}
        producer.send_metric("Work", (i % 4) * 0.5, namespace=namespace, dimensions=dims)
        expected.add(namespace, "Work", (i % 4) * 0.5, dims)
    assert producer.flush(timeout=10)
    producer.close()
    requeued_before = _self_metric(pipeline, MESSAGES_REQUEUED)
    pipeline.aws.ledger.reset()

    # GIVEN CloudWatch throttles every PutMetricData for a while (10 requests), longer than one 3 s invocation lasts
    injected_before = pipeline.aws.faults.injected["cloudwatch:PutMetricData"]
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", "throttle", probability=1.0, remaining=10))

    # WHEN the event source mapping keeps invoking the 3 s function
    poller.drain(timeout=60, window_seconds=0.5)

    # THEN every invocation returned a valid partial batch response before its deadline
    assert handler.durations and max(handler.durations) < FUNCTION_TIMEOUT, handler.durations
    assert all(r == {"batchItemFailures": []} for r in handler.responses), handler.responses
    # AND the throttled datums were re-queued (not failed back to SQS) and published by later invocations
    assert pipeline.aws.faults.injected["cloudwatch:PutMetricData"] - injected_before == 10
    assert poller.stats.invocations >= 2
    assert calls(pipeline, "sqs:SendMessageBatch") >= 1
    assert _self_metric(pipeline, MESSAGES_REQUEUED) > requeued_before
    # AND everything landed exactly once, nothing was set aside, nothing is left
    assert mismatches(pipeline, expected) == {}
    assert take_dlq(pipeline) == []
    assert pipeline.queue_depth() == 0
    assert pipeline.aws.ledger.rejections == []
    print(
        f"\ndeadline: invocations={poller.stats.invocations} max duration={max(handler.durations):.2f}s "
        f"requeue sends={calls(pipeline, 'sqs:SendMessageBatch')} PutMetricData calls="
        f"{calls(pipeline, 'cloudwatch:PutMetricData')} (10 throttled)"
    )


def test_requeued_past_the_attempt_limit_goes_to_the_dlq_not_around_again(
    clean_pipeline: LocalPipeline, timed: tuple[SqsEventSourcePoller, TimedHandler]
) -> None:
    pipeline = clean_pipeline
    poller, handler = timed
    last_chance, exhausted = unique_namespace("Requeue"), unique_namespace("Requeue")

    def wire(namespace: str, attempt: int) -> str:
        metric = {"namespace": namespace, "name": "Orders", "value": 7.0, "timestamp": time.time()}
        return json.dumps({"v": 1, "attempt": attempt, "metrics": [metric]})

    # GIVEN CloudWatch is down, and two re-queued messages: one at the limit, one just below it
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", "unavailable", probability=1.0))
    send_bodies(pipeline, [wire(exhausted, MAX_REQUEUE_ATTEMPTS), wire(last_chance, MAX_REQUEUE_ATTEMPTS - 1)])

    # WHEN one invocation handles them
    assert poller.poll_once(window_seconds=1.0, idle_timeout=2.0)

    # THEN the one past the limit is in the DLQ with rule cloudwatch.unavailable, in time
    assert max(handler.durations) < FUNCTION_TIMEOUT
    assert handler.responses == [{"batchItemFailures": []}]
    dlq = take_dlq(pipeline, wait_seconds=2)
    assert [m.rule for m in dlq] == ["cloudwatch.unavailable"]
    assert f"after {MAX_REQUEUE_ATTEMPTS} re-queues" in (dlq[0].reason or "")
    assert "ServiceUnavailable" in (dlq[0].reason or "")
    set_aside = dlq[0].json()
    assert [(m["namespace"], m["values"], m["counts"]) for m in set_aside["metrics"]] == [(exhausted, [7.0], [1.0])]
    # AND the other was re-queued once more, carrying its attempt count
    requeued = [json.loads(m["Body"]) for m in peek(pipeline)]
    assert [(b["attempt"], [m["namespace"] for m in b["metrics"]]) for b in requeued] == [
        (MAX_REQUEUE_ATTEMPTS, [last_chance])
    ]

    # WHEN CloudWatch recovers
    pipeline.aws.faults.clear()
    poller.drain(timeout=30, window_seconds=0.5)

    # THEN the re-queued datum lands once; the set-aside one never reached CloudWatch
    assert pipeline.read_series(last_chance, "Orders") == (7.0, 1)
    assert pipeline.read_series(exhausted, "Orders") == (0, 0)
    assert pipeline.queue_depth() == 0
    assert take_dlq(pipeline) == []

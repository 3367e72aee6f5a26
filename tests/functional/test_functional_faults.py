"""Issue 6, fault injection: CloudWatch throttling/5xx, SQS errors and partial failures, SQS or both unreachable."""

from __future__ import annotations

import time
from typing import Any

import pytest
from functional_support import (
    Expected,
    calls,
    closed_port,
    mismatches,
    take_dlq,
    unique_namespace,
    unreachable_client,
)

from metricbatch.batcher.self_metrics import PUT_METRIC_DATA_RETRIES
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline
from metricbatch.env import SELF_METRICS_NAMESPACE
from metricbatch.producer.producer import MetricProducer

PIPELINE_OPTIONS = {"batch_size": 20}


def _send_workload(producer: MetricProducer, namespaces: list[str], metrics: int, expected: Expected) -> None:
    """``metrics`` metrics over 10 series per namespace, spread over the last 3 minutes (more datums, more calls)."""
    now = time.time()
    for i in range(metrics):
        namespace, dims = namespaces[i % len(namespaces)], {"Host": f"h{i % 10}"}
        value = (i % 5) * 0.75
        producer.send_metric("Requests", value, namespace=namespace, dimensions=dims, timestamp=now - 60 * (i % 3))
        expected.add(namespace, "Requests", value, dims)


def _self_metric(pipeline: LocalPipeline, name: str) -> float:
    return pipeline.read_series(SELF_METRICS_NAMESPACE, name, {"service": LOCAL_SERVICE_NAME})[0]


@pytest.mark.parametrize("kind", ["throttle", "unavailable"])
def test_cloudwatch_failing_60_percent_of_calls_still_gets_every_sum_exact(
    clean_pipeline: LocalPipeline, kind: str
) -> None:
    pipeline = clean_pipeline
    namespaces = [unique_namespace(f"Faults{k}") for k in range(4)]
    expected = Expected.empty()
    producer = pipeline.producer(max_message_bytes=256)  # one wire metric per message: several invocations
    _send_workload(producer, namespaces, 4000, expected)
    assert producer.flush(timeout=10)
    producer.close()
    retries_before = _self_metric(pipeline, PUT_METRIC_DATA_RETRIES)
    injected_before = pipeline.aws.faults.injected["cloudwatch:PutMetricData"]
    pipeline.aws.ledger.reset()  # from here on, SendMessageBatch calls are the handler's re-queues

    # GIVEN CloudWatch answers 60% of PutMetricData calls with throttling (or 503)
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", kind, probability=0.6))

    # WHEN the queue is drained (anything re-queued is picked up by later polls)
    pipeline.poller.drain(timeout=90, window_seconds=0.5)

    # THEN every series' sum and count is exact: nothing lost, nothing published twice
    assert mismatches(pipeline, expected) == {}
    # AND nothing was set aside, no record failed back to SQS, nothing is left
    assert take_dlq(pipeline) == []
    assert pipeline.poller.stats.item_failures == 0
    assert pipeline.queue_depth() == 0
    assert pipeline.aws.ledger.rejections == []
    # AND the faults really hit a large share of the calls, and the retries show on the self-metrics
    injected = pipeline.aws.faults.injected["cloudwatch:PutMetricData"] - injected_before
    attempts = calls(pipeline, "cloudwatch:PutMetricData")
    assert injected >= 10
    assert 0.4 <= injected / attempts <= 0.85, (injected, attempts)
    assert _self_metric(pipeline, PUT_METRIC_DATA_RETRIES) - retries_before >= injected * 0.75
    print(
        f"\n{kind} 60%: PutMetricData attempts={attempts} faulted={injected} ({injected / attempts:.0%}) "
        f"requeue sends={calls(pipeline, 'sqs:SendMessageBatch')} invocations={pipeline.poller.stats.invocations}"
    )


def test_producer_survives_send_message_batch_errors_and_every_metric_reaches_the_queue_once(
    clean_pipeline: LocalPipeline,
) -> None:
    pipeline = clean_pipeline
    namespaces = [unique_namespace("SqsFaults")]
    expected = Expected.empty()
    # GIVEN the next 4 SendMessageBatch requests fail with 503 (more than the SDK's own 3 attempts), small messages
    pipeline.aws.faults.add(Fault("sqs:SendMessageBatch", "unavailable", probability=1.0, remaining=4))
    producer = pipeline.producer(max_message_bytes=256)  # one wire metric (a series' minute) per message

    # WHEN a service sends 3,000 metrics
    _send_workload(producer, namespaces, 3000, expected)
    assert producer.flush(timeout=30)
    producer.close()
    pipeline.aws.faults.clear()

    # THEN every metric went to SQS (none through the fallback, none dropped), each message once
    stats = producer.stats()
    assert (stats["sent"], stats["fallback_published"], stats["dropped"]) == (3000, 0, 0)
    assert stats["send_errors"] >= 1
    assert pipeline.aws.faults.injected["sqs:SendMessageBatch"] >= 1
    assert pipeline.queue_depth() == stats["messages_sent"]
    # AND once drained, CloudWatch holds exactly what was sent
    pipeline.poller.drain(timeout=60, window_seconds=0.5)
    assert mismatches(pipeline, expected) == {}
    assert take_dlq(pipeline) == []


class PartiallyFailingSqs:
    """The real SQS client, except that every other SendMessageBatch accepts only some entries and reports the rest
    as Failed inside a 200 response (SenderFault false), as SQS does under internal errors."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.partial_responses = 0
        self.entries_failed = 0
        self._calls = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self._calls += 1
        if self._calls % 2 or len(Entries) < 2:
            return dict(self._real.send_message_batch(QueueUrl=QueueUrl, Entries=Entries))
        accepted, refused = Entries[::2], Entries[1::2]
        response = self._real.send_message_batch(QueueUrl=QueueUrl, Entries=accepted)
        self.partial_responses += 1
        self.entries_failed += len(refused)
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"} for e in refused
        ]
        return {"Successful": response.get("Successful", []), "Failed": [*response.get("Failed", []), *failed]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_producer_retries_just_the_entries_sqs_failed_in_a_partial_batch_response(
    clean_pipeline: LocalPipeline,
) -> None:
    pipeline = clean_pipeline
    namespaces = [unique_namespace("Partial")]
    expected = Expected.empty()
    sqs = PartiallyFailingSqs(pipeline.sqs)
    # GIVEN SQS accepts only half of the entries of every other SendMessageBatch
    producer = MetricProducer(
        pipeline.queue_url, sqs_client=sqs, cloudwatch_client=pipeline.cloudwatch, max_message_bytes=256
    )

    # WHEN a service sends 3,000 metrics
    _send_workload(producer, namespaces, 3000, expected)
    assert producer.flush(timeout=30)
    producer.close()

    # THEN the refused entries were retried, and every message is in the queue exactly once
    stats = producer.stats()
    assert sqs.partial_responses >= 1
    assert (stats["sent"], stats["fallback_published"], stats["dropped"]) == (3000, 0, 0)
    assert stats["send_errors"] >= sqs.entries_failed
    assert pipeline.queue_depth() == stats["messages_sent"]
    pipeline.poller.drain(timeout=60, window_seconds=0.5)
    assert mismatches(pipeline, expected) == {}


def test_sqs_unreachable_falls_back_to_put_metric_data_with_exact_sums(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    port = closed_port()
    namespaces = [unique_namespace("Fallback"), unique_namespace("Fallback")]
    expected = Expected.empty()
    # GIVEN the producer's queue is on a closed loopback port, CloudWatch is up
    producer = MetricProducer(
        f"http://127.0.0.1:{port}/123456789012/metricbatch",
        sqs_client=unreachable_client("sqs", port),
        cloudwatch_client=pipeline.cloudwatch,
    )

    # WHEN a service sends 2,000 metrics and flushes
    _send_workload(producer, namespaces, 2000, expected)
    assert producer.flush(timeout=30)
    producer.close()

    # THEN the fallback published every one of them directly, in a few merged calls
    stats = producer.stats()
    assert (stats["fallback_published"], stats["sent"], stats["dropped"]) == (2000, 0, 0)
    assert stats["send_errors"] >= 1
    assert mismatches(pipeline, expected) == {}
    assert 1 <= calls(pipeline, "cloudwatch:PutMetricData") <= 10
    assert pipeline.aws.ledger.rejections == []
    assert pipeline.queue_depth() == 0


def test_both_unreachable_send_metric_stays_fast_memory_stays_bounded_and_every_drop_is_counted() -> None:
    sqs_port, cloudwatch_port = closed_port(), closed_port()
    max_buffered = 1000
    metrics = 20_000
    producer = MetricProducer(
        f"http://127.0.0.1:{sqs_port}/123456789012/metricbatch",
        namespace=unique_namespace("Dropped"),
        sqs_client=unreachable_client("sqs", sqs_port),
        cloudwatch_client=unreachable_client("cloudwatch", cloudwatch_port),
        max_buffered=max_buffered,
    )
    try:
        # GIVEN neither SQS nor CloudWatch can be reached
        # WHEN a service sends 20,000 metrics in a tight loop
        buffered_peak = 0
        slowest = 0.0
        started = time.perf_counter()
        for i in range(metrics):
            call_started = time.perf_counter()
            producer.send_metric("Requests", 1.0, dimensions={"Host": f"h{i % 10}"})
            slowest = max(slowest, time.perf_counter() - call_started)
            if i % 100 == 0:  # the bound is on distinct values held (memory); a repeated value only counts
                buffered_peak = max(buffered_peak, producer.stats()["buffered_values"])
        elapsed = time.perf_counter() - started

        # THEN the caller never waited on the network
        assert elapsed < 2.0, elapsed
        assert slowest < 0.1, slowest
        # AND at most max_buffered distinct values were ever held
        assert buffered_peak <= max_buffered
        # AND once the sender gives up, every metric is counted as dropped, and flush() says so
        assert producer.flush(timeout=30) is False
        stats = producer.stats()
        assert (stats["dropped"], stats["sent"], stats["fallback_published"]) == (metrics, 0, 0)
        assert stats["buffered"] == 0
        print(f"\nboth down: {metrics} send_metric calls in {elapsed * 1000:.0f} ms, slowest {slowest * 1e6:.0f} µs")
    finally:
        producer.close(timeout=5)

"""The issue's acceptance workload: producer -> SQS -> handler (batches of 20) -> CloudWatch, over HTTP."""

from __future__ import annotations

import pytest
from functional_support import Expected, calls, mismatches, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

METRICS = 20_000
SERIES = 100
NAMES = ("Latency", "Bytes", "Errors", "Items", "Retries")
UNITS = {"Latency": "Milliseconds", "Bytes": "Bytes", "Errors": "Count", "Items": "Count", "Retries": "None"}
PIPELINE_OPTIONS = {"batch_size": 20}


def _series(namespaces: tuple[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """100 series: 2 namespaces x 5 metric names x 10 services."""
    return [(ns, name, {"Service": f"svc-{k}"}) for ns in namespaces for name in NAMES for k in range(SERIES // 10)]


@pytest.mark.parametrize(
    "producer_options",
    [
        pytest.param({}, id="full-size-messages"),
        # ~2 wire metrics per message: dozens of messages, so the poller really assembles batches of 20 messages.
        pytest.param({"max_message_bytes": 512}, id="small-messages"),
    ],
)
def test_20000_metrics_over_100_series_land_exactly_with_a_fraction_of_the_calls(
    clean_pipeline: LocalPipeline, producer_options: dict[str, int]
) -> None:
    pipeline = clean_pipeline
    series = _series((unique_namespace("Shop"), unique_namespace("Payments")))
    expected = Expected.empty()
    producer = pipeline.producer(**producer_options)

    # GIVEN a service sending 20,000 metrics over 100 series in 2 namespaces
    for i in range(METRICS):
        namespace, name, dimensions = series[i % SERIES]
        value = (i % 8) * 0.25  # exact in binary: sums compare with ==
        producer.send_metric(name, value, unit=UNITS[name], namespace=namespace, dimensions=dimensions)
        expected.add(namespace, name, value, dimensions)
    assert producer.flush(timeout=30)
    producer.close()

    # WHEN the event source mapping drains the queue in batches of up to 20 messages
    pipeline.poller.drain(timeout=60, window_seconds=1.0)

    # THEN every series' sum and sample count read back from CloudWatch is exact
    assert mismatches(pipeline, expected) == {}
    stats = producer.stats()
    assert (stats["sent"], stats["dropped"], stats["fallback_published"]) == (METRICS, 0, 0)
    # AND no request was invalid or failed, nothing was set aside, nothing is left in the queue
    assert pipeline.aws.ledger.rejections == []
    assert dict(pipeline.aws.ledger.errors) == {}
    assert take_dlq(pipeline) == []
    assert pipeline.queue_depth() == 0
    # AND the producer merged each series' minute before sending: a few bytes per metric on the wire instead of
    # ~150, a handful of SendMessageBatch calls, one or two PutMetricData calls per invocation (100 datums each)
    put_calls = calls(pipeline, "cloudwatch:PutMetricData")
    sqs_sends = calls(pipeline, "sqs:SendMessageBatch") + calls(pipeline, "sqs:SendMessage")
    wire_bytes = pipeline.aws.ledger.snapshot()["request_bytes"]["sqs:SendMessageBatch"]
    assert stats["wire_bytes"] <= 5 * METRICS, stats["wire_bytes"]
    assert wire_bytes <= 6 * METRICS, wire_bytes  # the HTTP request: bodies plus the SendMessageBatch envelope
    assert stats["wire_entries"] <= 100 * stats["messages_sent"], stats
    assert 1 <= put_calls <= 2 * pipeline.poller.stats.invocations, put_calls
    assert 1 <= sqs_sends <= 5, sqs_sends
    assert max(pipeline.poller.stats.batch_sizes) <= 20
    if producer_options:
        assert 20 in pipeline.poller.stats.batch_sizes  # the small messages really filled batches of 20
    print(f"\n{producer_options or 'default'}: PutMetricData={put_calls} SQS sends={sqs_sends} "
          f"invocations={pipeline.poller.stats.invocations} stats={stats} "
          f"bytes={pipeline.aws.ledger.snapshot()['request_bytes']}")  # fmt: skip

"""At CloudWatch's limits: many distinct values per series, huge dimensions, high resolution — all accepted, exact."""

from __future__ import annotations

import time

from functional_support import Expected, calls, mismatches, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

PIPELINE_OPTIONS = {"batch_size": 20}


def test_series_at_the_limits_are_split_into_requests_cloudwatch_accepts(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Limits")
    expected = Expected.empty()
    producer = pipeline.producer()
    now = time.time()

    # GIVEN 3,000 distinct values in one series and minute (CloudWatch takes 150 per datum)
    for i in range(3000):
        producer.send_metric("Distinct", i * 0.25, namespace=namespace, timestamp=now)
        expected.add(namespace, "Distinct", i * 0.25)
    # AND 120 series with 30 dimensions of 1,024 characters each (~31 KB per datum: bytes, not count, split them)
    for k in range(120):
        dims = {f"Dim{d:02d}": f"{k:04d}{d:02d}".ljust(1024, "x") for d in range(30)}
        producer.send_metric("Wide", 1.5, namespace=namespace, dimensions=dims, timestamp=now)
        expected.add(namespace, "Wide", 1.5, dims)
    # AND a high-resolution series over 30 seconds
    for i in range(600):
        producer.send_metric("Fine", 0.5, namespace=namespace, storage_resolution=1, timestamp=now - i % 30)
        expected.add(namespace, "Fine", 0.5)
    assert producer.flush(timeout=30)
    producer.close()

    # WHEN the queue is drained
    pipeline.poller.drain(timeout=60, window_seconds=0.5)

    # THEN CloudWatch accepted every request and every sum and count is exact
    assert pipeline.aws.ledger.rejections == []
    assert pipeline.aws.ledger.errors["cloudwatch:PutMetricData"] == 0
    assert mismatches(pipeline, expected) == {}
    assert take_dlq(pipeline) == []
    # AND the requests were split no more than the limits demand: 3,000/150 values, ~31 KB x 120 over 1 MB, +1
    assert calls(pipeline, "cloudwatch:PutMetricData") <= 20 + 5 + 2

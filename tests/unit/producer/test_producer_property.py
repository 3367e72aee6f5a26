"""Property tests: whatever valid metrics a service sends, aggregated by the producer and merged again by the
batcher, CloudWatch reads back the same sum, count, min and max per series and bucket as the raw sequence. Also
across fork(): each process delivers exactly its own metrics."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricbatch.batcher.batcher import BatcherConfig, MetricBatcher
from metricbatch.limits import MIN_ABS_VALUE
from metricbatch.producer.producer import MetricProducer

from ..conftest import in_forked_child
from ..fakes import FakeCloudWatch, FakeSqs

QUEUE = "https://fake/queue"
DLQ = "https://fake/dlq"
NOW = float(int(time.time()))
DAY = 86_400.0
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (name, unit, dimensions, resolution): a small pool, so calls share series and buckets
SERIES = [
    ("Latency", "Milliseconds", {"Service": "cart"}, 60),
    ("Latency", "Milliseconds", {"Service": "pay"}, 60),
    ("Latency", "Milliseconds", {"Service": "cart"}, 1),
    ("Orders", "Count", {}, 60),
    ("Bytes", "Bytes", {"Bucket": "b", "Op": "put"}, 60),
]
# Multiples of 1/4 (sums exact in any order), zero, and values CloudWatch cannot take that round to 0.0
values = st.integers(-400, 400).map(lambda n: n / 4) | st.sampled_from([0.0, -0.0, 1e-300, -5e-324, 2.0**-361])
offsets = st.sampled_from([0.0, 0.4, 1.0, 59.9, 60.0, 61.5, 3600.0, 13 * DAY])


@dataclass(frozen=True)
class Call:
    series: int
    value: float
    offset: float | None  # seconds before NOW; None: no timestamp (the producer's clock, NOW)
    form: str  # how the timestamp is passed

    def timestamp(self) -> Any:
        if self.offset is None:
            return None
        epoch = NOW - self.offset
        if self.form == "naive":
            return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)
        if self.form == "aware":
            return datetime.fromtimestamp(epoch, UTC)
        return epoch


calls = st.lists(
    st.builds(
        Call,
        st.integers(0, len(SERIES) - 1),
        values,
        st.none() | offsets,
        st.sampled_from(["epoch", "naive", "aware"]),
    ),
    min_size=1,
    max_size=300,
)

Key = tuple[str, str, tuple[tuple[str, str], ...], str, int, float]


def _expected(sent: list[Call]) -> dict[Key, tuple[float, float, float, float]]:
    buckets: dict[Key, list[float]] = defaultdict(list)
    for call in sent:
        name, unit, dims, resolution = SERIES[call.series]
        epoch = NOW - (call.offset or 0.0)
        value = 0.0 if abs(call.value) < MIN_ABS_VALUE else call.value
        buckets[("Prop", name, tuple(sorted(dims.items())), unit, resolution, epoch // resolution * resolution)].append(
            value
        )
    return {k: (sum(v), float(len(v)), min(v), max(v)) for k, v in buckets.items()}


def _read_back(cloudwatch: FakeCloudWatch) -> dict[Key, tuple[float, float, float, float]]:
    buckets: dict[Key, list[tuple[float, float]]] = defaultdict(list)
    for namespace, datum in cloudwatch.datums():
        resolution = datum.get("StorageResolution", 60)
        dims = tuple(sorted((d["Name"], d["Value"]) for d in datum.get("Dimensions", [])))
        ts = float(datum["Timestamp"])
        key = (
            namespace,
            datum["MetricName"],
            dims,
            datum.get("Unit", "None"),
            resolution,
            ts // resolution * resolution,
        )
        if "Value" in datum:
            buckets[key].append((datum["Value"], 1.0))
        else:
            counts = datum.get("Counts", [1.0] * len(datum["Values"]))
            buckets[key].extend((v, c) for v, c in zip(datum["Values"], counts, strict=True) if c)
    return {
        k: (sum(v * c for v, c in pairs), sum(c for _, c in pairs), min(v for v, _ in pairs), max(v for v, _ in pairs))
        for k, pairs in buckets.items()
    }


def _producer(sqs: FakeSqs) -> MetricProducer:
    return MetricProducer(
        QUEUE, namespace="Prop", sqs_client=sqs, clock=lambda: NOW, flush_interval=30, handle_sigterm=False
    )


def _send(producer: MetricProducer, sent: list[Call]) -> None:
    for call in sent:
        name, unit, dims, resolution = SERIES[call.series]
        producer.send_metric(
            name, call.value, unit=unit, dimensions=dims, storage_resolution=resolution, timestamp=call.timestamp()
        )


def _through_the_batcher(bodies: list[str]) -> FakeCloudWatch:
    cloudwatch = FakeCloudWatch(now=lambda: NOW)
    batcher = MetricBatcher(
        BatcherConfig(dlq_url=DLQ, queue_url=QUEUE), cloudwatch=cloudwatch, sqs=FakeSqs(), clock=lambda: NOW
    )
    for i, body in enumerate(bodies):
        batcher.add_record(f"m{i}", body)
    assert batcher.finish() == []
    return cloudwatch


@PROPERTY
@given(calls)
def test_aggregated_and_merged_again_reads_back_like_the_raw_sequence(sent: list[Call]) -> None:
    sqs = FakeSqs()
    producer = _producer(sqs)
    try:
        _send(producer, sent)
        assert producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    assert producer.stats()["sent"] == len(sent)
    cloudwatch = _through_the_batcher([m["Body"] for m in sqs.messages(QUEUE)])
    assert _read_back(cloudwatch) == _expected(sent)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls, st.data())
def test_after_fork_each_process_delivers_exactly_its_own_metrics(sent: list[Call], data: st.DataObject) -> None:
    split = data.draw(st.integers(0, len(sent)))
    before, after = sent[:split], sent[split:]
    sqs = FakeSqs()
    producer = _producer(sqs)
    try:
        # GIVEN a parent that buffered `before` without flushing
        _send(producer, before)

        def child_sends_after() -> dict[str, Any]:  # and reports what reached its (copied) queue
            inherited = len(sqs.messages(QUEUE))
            _send(producer, after)
            ok = producer.flush(timeout=10)
            bodies = [m["Body"] for m in sqs.messages(QUEUE)[inherited:]]
            return {"ok": ok, "stats": producer.stats(), "bodies": bodies}

        child = in_forked_child(child_sends_after)
        assert producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    # THEN the child delivered exactly `after`, the parent exactly `before`: nothing twice, nothing lost
    assert child["ok"] is True
    assert (child["stats"]["sent"], child["stats"]["accepted"]) == (len(after), len(after))
    assert _read_back(_through_the_batcher(child["bodies"])) == _expected(after)
    assert _read_back(_through_the_batcher([m["Body"] for m in sqs.messages(QUEUE)])) == _expected(before)

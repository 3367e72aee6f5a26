"""MetricProducer over fake SQS and CloudWatch: validation at the call, wire format, buffering, failures."""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import metricbatch
from metricbatch import InvalidMetricError, MetricProducer
from metricbatch.env import DEFAULT_NAMESPACE
from metricbatch.wire import parse_envelope, parse_metric

from ..conftest import QUEUE_URL, ProducerFactory, RecordedSleeps, wire_samples
from ..fakes import FakeCloudWatch, FakeSqs, client_error, connection_error

DAY = 86_400.0

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("nan", {"value": math.nan}, "value.finite"),
    ("inf", {"value": math.inf}, "value.finite"),
    ("-inf", {"value": -math.inf}, "value.finite"),
    ("too big", {"value": 2.0**361}, "value.range"),
    ("huge int", {"value": 10**400}, "value.range"),
    ("string value", {"value": "12"}, "value.type"),
    ("bool value", {"value": True}, "value.type"),
    ("none value", {"value": None}, "value.type"),
    ("empty name", {"name": ""}, "name.empty"),
    ("blank name", {"name": "  "}, "name.empty"),
    ("long name", {"name": "n" * 256}, "name.length"),
    ("non-ascii name", {"name": "Latenz-ä"}, "name.ascii"),
    ("control name", {"name": "a\x00b"}, "name.ascii"),
    ("AWS namespace", {"namespace": "AWS/EC2"}, "namespace.reserved"),
    ("colon namespace", {"namespace": ":Shop"}, "namespace.colon"),
    ("31 dimensions", {"dimensions": {f"D{i}": "v" for i in range(31)}}, "dimensions.count"),
    ("empty dimension name", {"dimensions": {"": "v"}}, "dimension_name.empty"),
    ("long dimension name", {"dimensions": {"n" * 256: "v"}}, "dimension_name.length"),
    ("colon dimension name", {"dimensions": {":Host": "v"}}, "dimension_name.colon"),
    ("empty dimension value", {"dimensions": {"Host": ""}}, "dimension_value.empty"),
    ("long dimension value", {"dimensions": {"Host": "v" * 1025}}, "dimension_value.length"),
    ("non-string dimension value", {"dimensions": {"Host": 7}}, "dimension_value.type"),
    ("unhashable dimension value", {"dimensions": {"Host": ["a"]}}, "dimension_value.type"),
    ("dimensions not a mapping", {"dimensions": [("Host", "a")]}, "dimensions.type"),
    ("unknown unit", {"unit": "ms"}, "unit.unknown"),
    ("resolution 30", {"storage_resolution": 30}, "resolution.value"),
    ("resolution bool", {"storage_resolution": True}, "resolution.value"),
    ("15 days old", {"timestamp": time.time() - 15 * DAY}, "timestamp.too_old"),
    ("3 hours ahead", {"timestamp": time.time() + 3 * 3600}, "timestamp.too_new"),
    ("bad ISO", {"timestamp": "noon"}, "timestamp.format"),
]


@pytest.mark.parametrize(("label", "override", "rule"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_metric_raises_at_the_call_and_never_reaches_the_queue(
    make_producer: ProducerFactory, fake_sqs: FakeSqs, label: str, override: dict[str, Any], rule: str
) -> None:
    producer = make_producer()
    # GIVEN a series the producer has already seen (so its cache cannot wave bad input through)
    producer.send_metric("Latency", 1.0, dimensions={"Host": "a"}, storage_resolution=1)
    call: dict[str, Any] = {
        "name": "Latency",
        "value": 2.0,
        "dimensions": {"Host": "a"},
        "storage_resolution": 1,
        **override,
    }
    name, value = call.pop("name"), call.pop("value")
    # WHEN the bad metric is sent THEN the call itself raises, naming the rule
    with pytest.raises(InvalidMetricError) as info:
        producer.send_metric(name, value, **call)
    assert isinstance(info.value, ValueError)
    assert info.value.rule == rule
    assert f"[rule: {rule}]" in str(info.value)
    # AND only the good metrics reach the queue
    assert producer.flush(timeout=5)
    assert [(m["name"], m["value"]) for m in fake_sqs.metrics(QUEUE_URL)] == [("Latency", 1.0)]
    assert producer.stats()["invalid"] == 1


@pytest.mark.parametrize("mode", ["sqs", "off"])
def test_a_host_without_a_namespace_sends_to_the_documented_default(
    make_producer: ProducerFactory, fake_sqs: FakeSqs, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    # GIVEN a host with no METRICBATCH_NAMESPACE and code that passes no namespace= (host configuration missing)
    producer = make_producer(namespace=None, mode=mode)
    # WHEN it sends, again and again THEN no call raises
    with caplog.at_level(logging.WARNING, logger="metricbatch"):
        for i in range(3):
            producer.send_metric("Latency", float(i))
            producer.send_metric("Other", 1.0)
    assert producer.flush(timeout=5)
    # AND the metrics go to the documented default namespace, said once in the log and in stats()
    if mode == "sqs":
        assert {m["namespace"] for m in fake_sqs.metrics(QUEUE_URL)} == {DEFAULT_NAMESPACE}
        assert sorted(v for _, v in wire_samples(fake_sqs.metrics(QUEUE_URL))) == [0.0, 1.0, 1.0, 1.0, 1.0, 2.0]
    stats = producer.stats()
    assert stats["namespace"] == DEFAULT_NAMESPACE and stats["invalid"] == 0
    assert "METRICBATCH_NAMESPACE" in stats["namespace_reason"]
    lines = [r for r in caplog.records if DEFAULT_NAMESPACE in r.getMessage()]
    assert len(lines) <= 1  # once per process (an earlier test may have said it already)


def test_an_invalid_namespace_variable_falls_back_to_the_default(
    make_producer: ProducerFactory, fake_sqs: FakeSqs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICBATCH_NAMESPACE", "AWS/Mine")
    producer = make_producer(namespace=None)
    producer.send_metric("Latency", 1.0)
    assert producer.flush(timeout=5)
    assert [m["namespace"] for m in fake_sqs.metrics(QUEUE_URL)] == [DEFAULT_NAMESPACE]
    assert "namespace.reserved" in producer.stats()["namespace_reason"]


@pytest.mark.parametrize(("namespace", "rule"), [("", "namespace.empty"), ("AWS/Mine", "namespace.reserved")])
def test_a_bad_namespace_passed_in_code_still_raises(
    make_producer: ProducerFactory, fake_sqs: FakeSqs, namespace: str, rule: str
) -> None:
    for producer in (make_producer(namespace=namespace), make_producer(namespace=None)):
        with pytest.raises(InvalidMetricError) as info:
            producer.send_metric("Latency", 1.0, namespace=namespace)
        assert info.value.rule == rule
    with pytest.raises(InvalidMetricError):
        make_producer(namespace=namespace).send_metric("Latency", 1.0)
    assert fake_sqs.calls == 0


def test_good_metrics_reach_the_queue_as_wire_format_v1(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer()
    stamp = datetime.now(UTC) - timedelta(minutes=5)
    # WHEN metrics of several shapes are sent
    producer.send_metric(
        "Latency",
        12.5,
        unit="Milliseconds",
        namespace="Shop/Checkout",
        dimensions={"Service": "cart", "Az": "use1-az1"},
        timestamp=stamp,
    )
    producer.send_metric("Orders", 3, unit="Count", storage_resolution=1)
    producer.send_metric("Plain", -0.25)
    assert producer.flush(timeout=5) is True
    # THEN each SQS body is a v1 envelope carrying them with the documented fields
    envelopes = fake_sqs.envelopes(QUEUE_URL)
    assert envelopes and all(e["v"] == 1 and isinstance(e["metrics"], list) for e in envelopes)
    by_name = {m["name"]: m for m in fake_sqs.metrics(QUEUE_URL)}
    assert set(by_name) == {"Latency", "Orders", "Plain"}
    latency = by_name["Latency"]
    assert latency["namespace"] == "Shop/Checkout"
    assert latency["value"] == 12.5
    assert latency["unit"] == "Milliseconds"
    assert latency["dimensions"] == {"Az": "use1-az1", "Service": "cart"}
    assert latency["timestamp"] == stamp.timestamp() // 60 * 60  # the start of its minute, as CloudWatch stores it
    assert latency.get("resolution", 60) == 60
    orders = by_name["Orders"]
    assert (orders["namespace"], orders["value"], orders["unit"], orders["resolution"]) == ("Unit/Test", 3, "Count", 1)
    plain = by_name["Plain"]
    assert plain["value"] == -0.25
    assert plain.get("unit", "None") == "None"
    assert 0 <= time.time() - plain["timestamp"] < 120
    # AND the batcher's own parser accepts every body and metric
    for message in fake_sqs.messages(QUEUE_URL):
        envelope = parse_envelope(message["Body"])
        for raw in envelope["metrics"]:
            parse_metric(raw, default_timestamp=time.time(), now=time.time())
    stats = producer.stats()
    assert stats["sent"] == 3
    assert stats["buffered"] == 0
    assert stats["dropped"] == 0


def test_many_metrics_are_packed_into_few_sqs_requests(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(flush_interval=30)
    for i in range(2000):
        producer.send_metric("Latency", float(i), dimensions={"Host": f"h{i % 7}"})
    assert producer.flush(timeout=5)
    values = [v for _, v in wire_samples(fake_sqs.metrics(QUEUE_URL))]
    assert values == [float(i) for i in range(2000)]
    assert fake_sqs.calls == 1  # thousands of metrics per message, ten messages per request
    # 7 series, 2,000 distinct values: each series' minute spills into wire metrics of at most 150 values
    metrics = fake_sqs.metrics(QUEUE_URL)
    assert all(len(m["values"]) <= 150 and "counts" not in m for m in metrics)
    assert len(metrics) >= 14  # ~286 values per series: at least two wire metrics each
    assert producer.stats()["sent"] == 2000


def test_flush_with_nothing_buffered_returns_true(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer()
    assert producer.flush(timeout=1) is True
    assert fake_sqs.calls == 0
    assert producer.stats()["sent"] == 0


def test_full_buffer_drops_new_metrics_and_counts_them(make_producer: ProducerFactory) -> None:
    # GIVEN a sender stuck inside SendMessageBatch and room for 10 metrics (the one being sent counts)
    gate = threading.Event()
    sqs = FakeSqs(gate=gate)
    producer = make_producer(sqs_client=sqs, max_buffered=10)
    try:
        producer.send_metric("Latency", 0.0)
        assert sqs.entered.wait(5), "the sender never called SendMessageBatch"
        # WHEN 30 more metrics arrive while it is stuck
        for i in range(1, 31):
            producer.send_metric("Latency", float(i))
        # THEN 10 distinct values are held (exactly the bound) and 21 dropped, and counted
        stats = producer.stats()
        assert (stats["buffered"], stats["dropped"], stats["dropped_buffer_full"]) == (10, 21, 21)
        # AND a value already held still fits: it only raises a count
        producer.send_metric("Latency", 1.0)
        assert (producer.stats()["buffered"], producer.stats()["buffered_values"]) == (11, 10)
        # AND once SQS answers again, everything that was kept arrives; flush reports that some were dropped
        gate.set()
        assert producer.flush(timeout=5) is False
        assert wire_samples(sqs.metrics(QUEUE_URL)) == sorted(
            [("Latency", float(i)) for i in range(10)] + [("Latency", 1.0)]
        )
        assert producer.stats()["sent"] == 11
        assert producer.flush(timeout=5) is True  # nothing dropped since the previous flush
    finally:
        gate.set()
        producer.close(timeout=2)


def test_partial_send_message_batch_failure_delivers_every_metric_exactly_once(
    make_producer: ProducerFactory, no_backoff: RecordedSleeps
) -> None:
    # GIVEN SQS reports every other entry of its first three SendMessageBatch calls as Failed
    sqs = FakeSqs(fail_entries=lambda call, entry_id: call <= 3 and int(entry_id) % 2 == 0)
    producer = make_producer(sqs_client=sqs, max_message_bytes=300, flush_interval=30, sleep=no_backoff)
    # WHEN 100 metrics of 50 series go out in many small messages
    for i in range(100):
        producer.send_metric("Latency", float(i), dimensions={"Host": f"h{i % 50}"})
    assert producer.flush(timeout=5)
    # THEN every metric is in the queue exactly once and nothing went to the fallback
    assert len(sqs.messages(QUEUE_URL)) >= 20
    values = [v for _, v in wire_samples(sqs.metrics(QUEUE_URL))]
    assert values == [float(i) for i in range(100)]
    assert no_backoff, "the retries backed off through the injected sleep"
    assert sqs.failed_entries >= 3
    stats = producer.stats()
    assert stats["sent"] == 100
    assert stats["fallback_published"] == 0
    assert stats["dropped"] == 0
    assert stats["send_errors"] == sqs.failed_entries


def test_sqs_down_falls_back_to_put_metric_data_preserving_sums(
    make_producer: ProducerFactory, fake_cloudwatch: FakeCloudWatch, no_backoff: RecordedSleeps
) -> None:
    # GIVEN SQS cannot be reached at all
    sqs = FakeSqs(raise_for=connection_error)
    producer = make_producer(sqs_client=sqs, send_attempts=2, flush_interval=30, sleep=no_backoff)
    values = [float(i % 10) for i in range(500)]
    for value in values:
        producer.send_metric("Latency", value, unit="Milliseconds", dimensions={"Host": "a"})
    for _ in range(20):
        producer.send_metric("Errors", 1.0, unit="Count")
    # WHEN flushed
    assert producer.flush(timeout=5)
    # THEN CloudWatch got the data directly, merged but with the same sums, counts, min and max
    assert fake_cloudwatch.total("Latency") == sum(values)
    assert fake_cloudwatch.sample_count("Latency") == 500
    latency_values = [v for v, _ in fake_cloudwatch.samples("Latency")]
    assert (min(latency_values), max(latency_values)) == (0.0, 9.0)
    assert fake_cloudwatch.total("Errors") == 20
    assert len(fake_cloudwatch.requests) == 1  # one namespace, few datums: one call instead of 520
    stats = producer.stats()
    assert stats["fallback_published"] == 520
    assert stats["sent"] == 0
    assert stats["dropped"] == 0
    assert stats["send_errors"] >= 2
    assert stats["put_metric_data_calls"] == 1


def test_sqs_and_cloudwatch_down_drops_and_counts(make_producer: ProducerFactory, no_backoff: RecordedSleeps) -> None:
    # GIVEN neither SQS nor CloudWatch can be reached
    sqs = FakeSqs(raise_for=connection_error)
    cloudwatch = FakeCloudWatch(always=connection_error())
    producer = make_producer(sqs_client=sqs, cloudwatch_client=cloudwatch, send_attempts=2, sleep=no_backoff)
    # WHEN metrics are sent THEN the calls still return at once
    for i in range(50):
        producer.send_metric("Latency", float(i))
    # AND flush reports that they were dropped rather than delivered
    assert producer.flush(timeout=5) is False
    # AND every lost metric is counted as dropped
    stats = producer.stats()
    assert (stats["dropped"], stats["dropped_undeliverable"], stats["buffered"]) == (50, 50, 0)
    assert stats["sent"] == 0
    assert stats["fallback_published"] == 0
    assert cloudwatch.attempts >= 1
    assert cloudwatch.requests == []


def test_fallback_off_drops_when_sqs_is_down(
    make_producer: ProducerFactory, fake_cloudwatch: FakeCloudWatch, no_backoff: RecordedSleeps
) -> None:
    sqs = FakeSqs(raise_for=lambda url: client_error("ServiceUnavailable", 503, "SendMessageBatch"))
    producer = make_producer(sqs_client=sqs, fallback=False, sleep=no_backoff)
    producer.send_metric("Latency", 1.0)
    assert producer.flush(timeout=5) is False
    assert producer.stats()["dropped"] == 1
    assert fake_cloudwatch.attempts == 0


def test_flush_timeout_returns_false_while_sqs_is_stuck(make_producer: ProducerFactory) -> None:
    gate = threading.Event()
    sqs = FakeSqs(gate=gate)
    producer = make_producer(sqs_client=sqs)
    try:
        producer.send_metric("Latency", 1.0)
        assert producer.flush(timeout=0.2) is False
        assert producer.stats()["buffered"] == 1
        gate.set()
        assert producer.flush(timeout=5) is True
    finally:
        gate.set()
        producer.close(timeout=2)


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICBATCH_QUEUE_URL", "https://env/q")
    monkeypatch.setenv("METRICBATCH_NAMESPACE", "Env/Ns")
    from_env = MetricProducer()
    assert (from_env.config.queue_url, from_env.config.namespace) == ("https://env/q", "Env/Ns")
    explicit = MetricProducer(queue_url="https://explicit/q", namespace="Explicit/Ns", flush_interval=0.5)
    assert (explicit.config.queue_url, explicit.config.namespace) == ("https://explicit/q", "Explicit/Ns")
    assert explicit.config.flush_interval == 0.5


# -- the module-level helpers --------------------------------------------------------------------------------------
@pytest.fixture
def restore_default_producer() -> Any:
    previous = metricbatch.set_default_producer(None)
    yield
    metricbatch.set_default_producer(previous)


@pytest.mark.usefixtures("restore_default_producer")
def test_module_level_helpers_use_the_default_producer(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(namespace="Default/Ns")
    metricbatch.set_default_producer(producer)
    metricbatch.send_metric("Checkout", 2.0, unit="Count", dimensions={"Service": "cart"})
    metricbatch.send_metric("Checkout", 3.0, unit="Count", dimensions={"Service": "cart"})
    assert metricbatch.flush(timeout=5) is True
    (metric,) = fake_sqs.metrics(QUEUE_URL)
    assert (metric["namespace"], metric["values"], metric["dimensions"]) == (
        "Default/Ns",
        [2.0, 3.0],
        {"Service": "cart"},
    )
    stats = metricbatch.stats()
    assert stats["sent"] == 2
    assert {"buffered", "sent", "dropped", "fallback_published", "send_errors"} <= stats.keys()
    with pytest.raises(InvalidMetricError):
        metricbatch.send_metric("Checkout", math.nan)


@pytest.mark.usefixtures("restore_default_producer")
def test_default_producer_reads_the_environment_at_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICBATCH_QUEUE_URL", "https://env/q")
    monkeypatch.setenv("METRICBATCH_NAMESPACE", "Env/Ns")
    producer = metricbatch.default_producer()
    assert producer is metricbatch.default_producer()
    assert (producer.config.queue_url, producer.config.namespace) == ("https://env/q", "Env/Ns")

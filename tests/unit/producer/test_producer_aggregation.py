"""The producer merges each series' bucket into one wire metric (value -> count), exactly as the batcher would."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import metricbatch
from metricbatch import InvalidMetricError, SeriesHandle

from ..conftest import QUEUE_URL, ProducerFactory, wire_samples
from ..fakes import FakeSqs

NOW = 1_795_694_425.5  # 25.5 s into a minute
MINUTE = NOW // 60 * 60


def fixed_clock() -> float:
    return NOW


def _metrics(sqs: FakeSqs) -> list[dict[str, Any]]:
    return sorted(sqs.metrics(QUEUE_URL), key=lambda m: (m["name"], m["timestamp"], str(m.get("dimensions"))))


def test_a_bucket_with_one_sample_is_a_value_and_repeats_become_counts(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    producer = make_producer(clock=fixed_clock, flush_interval=30)
    # GIVEN one lone sample, a series with repeated values, one with distinct values, all in one minute
    producer.send_metric("Lone", 7.5)
    for value in (2.0, 2.0, 3.0, 2.0):
        producer.send_metric("Repeats", value, unit="Milliseconds")
    for value in (1.0, 2.0, 3.0):
        producer.send_metric("Distinct", value)
    assert producer.flush(timeout=5)
    # THEN each series is one wire metric stamped with the start of its minute
    lone, repeats, distinct = (
        m for name in ("Lone", "Repeats", "Distinct") for m in _metrics(fake_sqs) if m["name"] == name
    )
    assert {k: lone[k] for k in ("value", "timestamp")} == {"value": 7.5, "timestamp": MINUTE}
    assert "values" not in lone
    assert (repeats["values"], repeats["counts"], repeats["unit"]) == ([2.0, 3.0], [3, 1], "Milliseconds")
    assert (distinct["values"], "counts" in distinct) == ([1.0, 2.0, 3.0], False)  # counts left out when all 1
    # AND stats count metrics, not wire entries
    stats = producer.stats()
    assert (stats["sent"], stats["accepted"], stats["wire_entries"]) == (8, 8, 3)


def test_buckets_are_minutes_or_seconds_by_resolution(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(clock=fixed_clock, flush_interval=30)
    # GIVEN samples 0, 0.4, 1.2 and 61 seconds after the start of a minute, in standard and high resolution
    for offset in (0.0, 0.4, 1.2, 61.0):
        producer.send_metric("Standard", 1.0, timestamp=MINUTE + offset - 120)
        producer.send_metric("High", 1.0, timestamp=MINUTE + offset - 120, storage_resolution=1)
    assert producer.flush(timeout=5)
    by_name: dict[str, dict[float, int]] = {}
    for m in _metrics(fake_sqs):
        by_name.setdefault(m["name"], {})[m["timestamp"]] = sum(m.get("counts", [1] * len(m.get("values", [0]))))
    start = MINUTE - 120
    # THEN resolution 60 merges per minute and resolution 1 per second, stamped with the bucket's start
    assert by_name["Standard"] == {start: 3, start + 60: 1}
    assert by_name["High"] == {start: 2, start + 1: 1, start + 61: 1}
    assert all(m.get("resolution", 60) == (1 if m["name"] == "High" else 60) for m in _metrics(fake_sqs))


def test_more_than_150_distinct_values_spill_into_more_wire_metrics(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    producer = make_producer(clock=fixed_clock, flush_interval=30)
    for i in range(400):
        producer.send_metric("Spread", float(i % 320))  # 320 distinct values, 80 of them twice
    assert producer.flush(timeout=5)
    metrics = fake_sqs.metrics(QUEUE_URL)
    assert [len(m["values"]) for m in metrics] == [150, 150, 20]
    assert wire_samples(metrics) == sorted(("Spread", float(i % 320)) for i in range(400))
    assert all(m["timestamp"] == MINUTE for m in metrics)


def test_naive_datetime_is_utc_and_costs_no_timezone_round_trip(
    make_producer: ProducerFactory, fake_sqs: FakeSqs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a local time zone far from UTC, where datetime.timestamp() would read a naive datetime as local
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    import time

    time.tzset()
    try:
        producer = make_producer(flush_interval=30)
        aware = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=3)
        naive = aware.replace(tzinfo=None)
        elsewhere = aware.astimezone(timezone(timedelta(hours=-7)))
        # WHEN the same instant is sent as a naive, an aware UTC and an aware non-UTC datetime
        for stamp in (naive, aware, elsewhere):
            producer.send_metric("When", 1.0, timestamp=stamp)
        assert producer.flush(timeout=5)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    # THEN all three land in the same minute: the naive one was read as UTC
    (metric,) = fake_sqs.metrics(QUEUE_URL)
    assert metric["timestamp"] == calendar.timegm(naive.timetuple()) // 60 * 60
    assert metric["values"] == [1.0] and metric["counts"] == [3]


def test_series_handle_validates_once_and_sends_values(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(clock=fixed_clock, flush_interval=30)
    # GIVEN a handle for a series
    latency = producer.series("Latency", unit="Milliseconds", dimensions={"Service": "cart"})
    assert isinstance(latency, SeriesHandle)
    assert (latency.name, latency.namespace, latency.dimensions) == ("Latency", "Unit/Test", {"Service": "cart"})
    # WHEN values are sent through it, one with an explicit timestamp
    for value in (12.5, 12.5, 30.0):
        latency.send(value)
    latency.send(1.0, timestamp=NOW - 60)
    # THEN a bad value is still rejected at the call, naming the rule
    with pytest.raises(InvalidMetricError, match=r"\[rule: value.finite\]"):
        latency.send(math.inf)
    assert producer.flush(timeout=5)
    metrics = _metrics(fake_sqs)
    assert [(m["timestamp"], m.get("values", [m.get("value")]), m.get("counts")) for m in metrics] == [
        (MINUTE - 60, [1.0], None),
        (MINUTE, [12.5, 30.0], [2, 1]),
    ]
    assert all(m["unit"] == "Milliseconds" and m["dimensions"] == {"Service": "cart"} for m in metrics)
    assert producer.stats()["invalid"] == 1


def test_a_bad_series_handle_raises_when_it_is_made(make_producer: ProducerFactory) -> None:
    producer = make_producer()
    with pytest.raises(InvalidMetricError, match=r"\[rule: unit.unknown\]"):
        producer.series("Latency", unit="ms")
    with pytest.raises(InvalidMetricError, match=r"\[rule: dimensions.count\]"):
        producer.series("Latency", dimensions={f"D{i}": "v" for i in range(31)})


def test_module_level_series_uses_the_default_producer(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(namespace="Default/Ns")
    previous = metricbatch.set_default_producer(producer)
    try:
        handle = metricbatch.series("Orders", unit="Count")
        handle.send(1.0)
        handle.send(1.0)
        assert metricbatch.flush(timeout=5)
    finally:
        metricbatch.set_default_producer(previous)
    (metric,) = fake_sqs.metrics(QUEUE_URL)
    assert (metric["namespace"], metric["name"], metric["values"], metric["counts"]) == (
        "Default/Ns",
        "Orders",
        [1.0],
        [2],
    )


def test_a_naive_datetime_out_of_range_says_it_was_read_as_utc(make_producer: ProducerFactory) -> None:
    producer = make_producer()
    ahead = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=3)
    with pytest.raises(InvalidMetricError, match=r"\(a naive datetime is read as UTC\) is more than 2 hours after"):
        producer.send_metric("When", 1.0, timestamp=ahead)
    with pytest.raises(InvalidMetricError) as aware:
        producer.send_metric("When", 1.0, timestamp=ahead.replace(tzinfo=UTC))
    assert "naive" not in str(aware.value) and aware.value.rule == "timestamp.too_new"


def test_a_value_cloudwatch_finds_too_small_is_sent_as_zero(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(clock=fixed_clock, flush_interval=30)
    for value in (1e-300, -5e-324, 0.0):
        producer.send_metric("Tiny", value)
    assert producer.flush(timeout=5)
    (metric,) = fake_sqs.metrics(QUEUE_URL)
    assert (metric["values"], metric["counts"]) == ([0.0], [3])

"""Under load and across threads: the bound is exact, counters add up, drops are logged with totals."""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from metricbatch import InvalidMetricError

from ..conftest import QUEUE_URL, ProducerFactory, wire_samples
from ..fakes import FakeSqs


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so unguarded read-modify-writes interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_one_thread_in_a_tight_loop_drops_nothing_while_sqs_is_healthy(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    producer = make_producer(flush_interval=1.0)
    # WHEN one thread sends 300,000 metrics over 4 series as fast as it can
    for i in range(300_000):
        producer.send_metric("Tight", float(i % 10), dimensions={"Host": f"h{i % 4}"})
    assert producer.flush(timeout=30) is True
    # THEN nothing was dropped and every metric is in the queue, in few wire metrics
    stats = producer.stats()
    assert (stats["sent"], stats["dropped"], stats["buffered"]) == (300_000, 0, 0)
    samples = wire_samples(fake_sqs.metrics(QUEUE_URL))
    assert len(samples) == 300_000 and sum(v for _, v in samples) == 30_000 * 45
    assert stats["wire_entries"] <= 4 * 2 * stats["messages_sent"]  # 4 series, at most 2 minutes per round


def test_eight_threads_drop_nothing_and_every_metric_is_counted_once(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    producer = make_producer(flush_interval=1.0)

    def work(index: int) -> None:
        for i in range(50_000):
            producer.send_metric("Threads", 1.0, dimensions={"Thread": str(index), "Kind": str(i % 3)})

    _in_threads(8, work)
    assert producer.flush(timeout=30) is True
    stats = producer.stats()
    assert (stats["accepted"], stats["sent"], stats["dropped"], stats["buffered"]) == (400_000, 400_000, 0, 0)
    assert len(wire_samples(fake_sqs.metrics(QUEUE_URL))) == 400_000


@pytest.mark.usefixtures("busy_switching")
def test_the_bound_is_exact_under_eight_threads(make_producer: ProducerFactory) -> None:
    # GIVEN a sender stuck inside SendMessageBatch and room for 1,000 metrics
    gate = threading.Event()
    sqs = FakeSqs(gate=gate)
    producer = make_producer(sqs_client=sqs, max_buffered=1_000)
    producer.send_metric("Bound", 0.0)
    assert sqs.entered.wait(5)

    # WHEN 8 threads send 2,000 distinct values each, then one value the buffer already holds
    def work(index: int) -> None:
        for i in range(2_000):
            producer.send_metric("Bound", float(index * 10_000 + i))

    _in_threads(8, work)
    producer.send_metric("Bound", 0.0)
    # THEN exactly 1,000 distinct values are held (the one being sent included), every other new value was
    # dropped and counted, and the repeat of a held value still fitted (it only raised a count)
    stats = producer.stats()
    assert (stats["buffered_values"], stats["buffered"], stats["accepted"]) == (1_000, 1_001, 1_001)
    assert stats["dropped"] == stats["dropped_buffer_full"] == 16_001 - 1_000
    gate.set()
    assert producer.flush(timeout=10) is False  # drops since the last flush: reported
    assert len(wire_samples(sqs.metrics(QUEUE_URL))) == 1_001


@pytest.mark.usefixtures("busy_switching")
def test_counters_changed_from_many_threads_lose_no_update(make_producer: ProducerFactory) -> None:
    producer = make_producer()

    def work(index: int) -> None:
        for _ in range(3_000):
            with pytest.raises(InvalidMetricError):
                producer.send_metric("Bad", math.nan)
            producer.send_metric("Good", 1.0)

    _in_threads(8, work)
    assert producer.flush(timeout=10)
    stats = producer.stats()
    assert (stats["invalid"], stats["accepted"], stats["sent"]) == (24_000, 24_000, 24_000)


@pytest.mark.usefixtures("busy_switching")
def test_flush_targets_never_go_backwards(make_producer: ProducerFactory) -> None:
    producer = make_producer(flush_interval=30)
    stop = threading.Event()
    seen: list[int] = []

    def watch() -> None:
        last = 0
        while not stop.is_set():
            accepted = producer.stats()["accepted"]
            if accepted < last:
                seen.append(last - accepted)
            last = accepted

    watcher = threading.Thread(target=watch)
    watcher.start()

    def work(index: int) -> None:
        for _ in range(5_000):
            producer.send_metric("Monotonic", 1.0)

    try:
        _in_threads(8, work)
    finally:
        stop.set()
        watcher.join()
    assert seen == [], f"the accepted mark went backwards {len(seen)} times"
    assert producer.flush(timeout=10)
    assert producer.stats()["sent"] == 40_000


class SteppingClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_drop_lines_carry_the_count_since_the_last_line_and_the_total(
    make_producer: ProducerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="metricbatch")
    gate = threading.Event()
    sqs = FakeSqs(gate=gate)
    clock = SteppingClock()
    producer = make_producer(sqs_client=sqs, max_buffered=10, monotonic=clock)

    def overflow() -> None:
        # the sender stuck with 1 value, 9 more held, 21 new values dropped
        gate.clear()
        sqs.entered.clear()
        producer.send_metric("Drops", 0.0)
        assert sqs.entered.wait(5)
        for i in range(30):
            producer.send_metric("Drops", float(i + 1))
        gate.set()

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]

    # WHEN the buffer overflows once
    overflow()
    assert producer.flush(timeout=5) is False
    # THEN one line says how many were dropped, why, and the total
    assert lines() == ["metricbatch dropped 21 metric(s) since the last report (buffer full: 21); 21 in total"]
    # WHEN it overflows again within the logging interval THEN no new line yet
    clock.now += 1.0
    overflow()
    assert producer.flush(timeout=5) is False
    assert len(lines()) == 1
    # WHEN the interval has passed THEN the next line carries both drops since the last line, and the total
    clock.now += 10.0
    overflow()
    assert producer.flush(timeout=5) is False
    assert lines()[1:] == ["metricbatch dropped 42 metric(s) since the last report (buffer full: 42); 63 in total"]
    # AND closing (as at exit) logs the total once
    producer.close(timeout=5)
    assert lines()[2:] == [
        "metricbatch dropped 63 metric(s) in total (buffer full: 63, SQS and CloudWatch unavailable: 0)"
    ]
    assert producer.stats()["dropped"] == 63


def test_metrics_arriving_during_a_round_wait_for_the_next_one(make_producer: ProducerFactory) -> None:
    # GIVEN a sender inside SendMessageBatch with one metric, and a long interval
    gate = threading.Event()
    sqs = FakeSqs(gate=gate)
    producer = make_producer(sqs_client=sqs, flush_interval=30)
    producer.send_metric("Trickle", 0.0)
    flushed = threading.Thread(target=producer.flush, kwargs={"timeout": 10})
    flushed.start()
    assert sqs.entered.wait(5)
    # WHEN 5 more arrive meanwhile (far below the wake threshold) and SendMessageBatch returns
    for i in range(5):
        producer.send_metric("Trickle", float(i + 1))
    gate.set()
    flushed.join()
    # THEN they are not chased with a request of their own: they wait for the interval (or a flush)
    assert not threading.Event().wait(0.3)  # give a chained round every chance to happen
    assert (sqs.calls, producer.stats()["sender_rounds"], producer.stats()["buffered"]) == (1, 1, 5)
    assert producer.flush(timeout=5)
    assert (sqs.calls, producer.stats()["sent"]) == (2, 6)

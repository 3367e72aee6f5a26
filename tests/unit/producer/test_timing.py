"""timer, flush_after and flushing over a producer with a fake queue."""

from __future__ import annotations

import time
from typing import Any

import pytest

import metricbatch
from metricbatch import InvalidMetricError, flush_after, flushing, timer
from metricbatch.env import DEFAULT_NAMESPACE

from ..conftest import QUEUE_URL, ProducerFactory, wire_samples
from ..fakes import FakeSqs


def by_name(sqs: FakeSqs) -> dict[str, dict[str, object]]:
    metrics = sqs.metrics(QUEUE_URL)
    named = {str(m["name"]): m for m in metrics}
    assert len(named) == len(metrics), "each timer metric is sent once"
    return named


def test_timer_records_duration_and_success(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer()
    # WHEN a block taking ~20 ms is timed
    with timer("Db.Get", namespace="Shop", dimensions={"Table": "orders"}, producer=producer):
        time.sleep(0.02)
    assert producer.flush(timeout=5)
    # THEN its duration in Milliseconds and a success count go out, with the same dimensions
    metrics = by_name(fake_sqs)
    assert set(metrics) == {"Db.Get", "Db.Get.Success", "Db.Get.Error"}
    duration = metrics["Db.Get"]
    assert duration["unit"] == "Milliseconds"
    assert isinstance(duration["value"], float) and 15.0 <= duration["value"] < 2000.0
    assert (metrics["Db.Get.Success"]["value"], metrics["Db.Get.Error"]["value"]) == (1.0, 0.0)
    assert all(m["unit"] in {"Milliseconds", "Count"} for m in metrics.values())
    assert metrics["Db.Get.Error"]["unit"] == "Count"
    assert all(m["namespace"] == "Shop" and m["dimensions"] == {"Table": "orders"} for m in metrics.values())


def test_timer_records_an_error_and_reraises(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer()
    with pytest.raises(KeyError, match="missing"), timer("Db.Get", producer=producer):
        raise KeyError("missing")
    assert producer.flush(timeout=5)
    metrics = by_name(fake_sqs)
    assert (metrics["Db.Get.Success"]["value"], metrics["Db.Get.Error"]["value"]) == (0.0, 1.0)
    assert metrics["Db.Get"]["namespace"] == "Unit/Test"  # the producer's default namespace


def test_timer_as_decorator_times_every_call(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer()

    @timer("S3.Put", producer=producer)
    def put(fail: bool) -> str:
        if fail:
            raise RuntimeError("boom")
        return "ok"

    assert put(False) == "ok"
    assert put(False) == "ok"
    with pytest.raises(RuntimeError):
        put(True)
    assert producer.flush(timeout=5)
    samples = wire_samples(fake_sqs.metrics(QUEUE_URL))
    assert sum(v for n, v in samples if n == "S3.Put.Success") == 2.0
    assert sum(v for n, v in samples if n == "S3.Put.Error") == 1.0
    assert len([n for n, _ in samples if n == "S3.Put"]) == 3


def test_flush_after_flushes_before_the_handler_returns(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    # GIVEN a producer that on its own would not send for 30 s
    producer = make_producer(flush_interval=30)

    @flush_after(producer=producer, timeout=5)
    def handler(event: dict[str, int], context: object) -> int:
        producer.send_metric("Handled", float(event["n"]))
        return event["n"]

    # WHEN the decorated handler returns THEN its metric is already in the queue
    assert handler({"n": 3}, None) == 3
    assert [m["value"] for m in fake_sqs.metrics(QUEUE_URL)] == [3.0]
    assert handler.__name__ == "handler"


def test_flush_after_flushes_even_when_the_handler_raises(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(flush_interval=30)

    @flush_after(producer=producer)
    def handler() -> None:
        producer.send_metric("Before", 1.0)
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        handler()
    assert [m["name"] for m in fake_sqs.metrics(QUEUE_URL)] == ["Before"]


def test_flushing_context_flushes_on_exit(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(flush_interval=30)
    with flushing(producer=producer, timeout=5):
        producer.send_metric("Inside", 1.0)
    assert [m["name"] for m in fake_sqs.metrics(QUEUE_URL)] == ["Inside"]


# -- a timer validates when created and never changes the timed code's outcome ---------------------------------------
@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"name": ""}, "name.empty"),
        ({"name": "N" * 250}, "name.length"),  # "<name>.Success" would be too long
        ({"name": "Op", "dimensions": {"": "x"}}, "dimension_name.empty"),
        ({"name": "Op", "namespace": "AWS/Mine"}, "namespace.reserved"),
        ({"name": "Op", "storage_resolution": 5}, "resolution.value"),
    ],
)
@pytest.mark.parametrize("explicit_producer", [True, False])
def test_a_bad_timer_raises_when_created_before_the_code_runs(
    make_producer: ProducerFactory, options: dict[str, Any], rule: str, explicit_producer: bool
) -> None:
    producer = make_producer()
    ran: list[str] = []
    extra: dict[str, Any] = {"producer": producer} if explicit_producer else {}
    with pytest.raises(InvalidMetricError) as info, timer(**options, **extra):
        ran.append("block")
    assert info.value.rule == rule
    assert ran == []  # the block never ran: no committed write reported as a failed request


def test_a_timer_never_replaces_the_blocks_own_exception(
    make_producer: ProducerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a default producer whose own namespace (passed in code) is invalid, so the timer cannot record
    metricbatch.set_default_producer(make_producer(namespace="AWS/Bad"))
    try:
        timed = timer("Db.Get")  # created fine: the default producer is not consulted yet
        # WHEN the block raises THEN exactly its own exception comes out
        with pytest.raises(KeyError, match="missing") as info, timed:
            raise KeyError("missing")
        assert info.value.__context__ is None
        # AND a block that succeeded still succeeds, its result unchanged
        with timed:
            result = "committed"
        assert result == "committed"

        @timer("Db.Put")
        def put() -> str:
            return "ok"

        assert put() == "ok"
        # AND what could not be recorded is counted and logged
        stats = metricbatch.stats()
        assert stats["invalid"] >= 3
        assert any("could not record" in r.getMessage() for r in caplog.records)
    finally:
        metricbatch.set_default_producer(None)


def test_a_timer_without_any_namespace_configured_records_to_the_default(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN a host with no namespace configured at all
    producer = make_producer(namespace=None)
    # WHEN a block that succeeded is timed THEN it still succeeds, and its metrics go to the default namespace
    with timer("Db.Write", producer=producer):
        written = True
    assert written
    assert producer.flush(timeout=5)
    assert {m["namespace"] for m in fake_sqs.metrics(QUEUE_URL)} == {DEFAULT_NAMESPACE}
    assert (by_name(fake_sqs)["Db.Write.Success"]["value"]) == 1.0

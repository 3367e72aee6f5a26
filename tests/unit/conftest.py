"""Fixtures for the unit tier: fakes instead of AWS, producers that are always closed, no global side effects."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from metricbatch.producer.producer import MetricProducer

from .fakes import FakeCloudWatch, FakeSqs

QUEUE_URL = "https://example/q"

ProducerFactory = Callable[..., MetricProducer]


@pytest.fixture
def fake_sqs() -> FakeSqs:
    return FakeSqs()


@pytest.fixture
def fake_cloudwatch() -> FakeCloudWatch:
    return FakeCloudWatch()


class RecordedSleeps(list[float]):
    """An injected ``sleep``: records each backoff delay and returns at once."""

    def __call__(self, seconds: float) -> None:
        assert seconds >= 0
        self.append(seconds)


@pytest.fixture
def no_backoff() -> RecordedSleeps:
    """Pass as ``sleep=`` to a producer: its retries back off without waiting, and the delays are recorded."""
    return RecordedSleeps()


@pytest.fixture
def make_producer(
    monkeypatch: pytest.MonkeyPatch, fake_sqs: FakeSqs, fake_cloudwatch: FakeCloudWatch
) -> Iterator[ProducerFactory]:
    """Build MetricProducers over the fakes; every one is closed at teardown so no sender thread outlives a test."""
    monkeypatch.delenv("METRICBATCH_QUEUE_URL", raising=False)
    monkeypatch.delenv("METRICBATCH_NAMESPACE", raising=False)
    made: list[MetricProducer] = []
    gates: list[threading.Event] = []

    def make(**options: Any) -> MetricProducer:
        settings: dict[str, Any] = {
            "queue_url": QUEUE_URL,
            "namespace": "Unit/Test",
            "sqs_client": fake_sqs,
            "cloudwatch_client": fake_cloudwatch,
            "flush_interval": 0.05,
            "exit_flush_timeout": 2.0,
            "handle_sigterm": False,
        }
        settings.update(options)
        gate = getattr(settings["sqs_client"], "gate", None)
        if gate is not None:
            gates.append(gate)
        producer = MetricProducer(**settings)
        made.append(producer)
        return producer

    yield make
    for gate in gates:
        gate.set()
    for producer in made:
        producer.close(timeout=2.0)
    deadline = time.monotonic() + 5
    while any(t.name == "metricbatch-sender" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "metricbatch-sender"], "a sender outlived its test"


def wire_samples(metrics: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """(name, value) once per sample of wire metrics, ``value`` or ``values`` + ``counts`` expanded, sorted."""
    out: list[tuple[str, float]] = []
    for metric in metrics:
        if "value" in metric:
            out.append((metric["name"], metric["value"]))
            continue
        counts = metric.get("counts", [1] * len(metric["values"]))
        for value, count in zip(metric["values"], counts, strict=True):
            out.extend([(metric["name"], value)] * int(count))
    return sorted(out)


def in_forked_child(report: Callable[[], Any]) -> Any:
    """Fork; the child runs ``report`` and hands its JSON-able result back through a pipe, then leaves at once
    (``os._exit``: no exit hooks). Returns the child's result after it ended."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            result = report()
            with os.fdopen(write_end, "w") as pipe:
                json.dump(result, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = json.load(pipe)
    os.waitpid(pid, 0)
    return child

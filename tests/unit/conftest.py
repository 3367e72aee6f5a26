"""Fixtures for the unit tier: fakes instead of AWS, producers that are always closed, no global side effects."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import metricbatch.aws.retry as retry_module
import metricbatch.producer.producer as producer_module
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


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting: the producer's senders have no injectable sleep, so zero their backoff instead."""
    monkeypatch.setattr(retry_module, "backoff_delay", lambda *args, **kwargs: 0.0)


@pytest.fixture
def make_producer(
    monkeypatch: pytest.MonkeyPatch, fake_sqs: FakeSqs, fake_cloudwatch: FakeCloudWatch
) -> Iterator[ProducerFactory]:
    """Build MetricProducers over the fakes; every one is closed at teardown so no sender thread outlives a test."""
    # Exit hooks (atexit, SIGTERM handler) are process-wide; unit tests close their producers themselves.
    monkeypatch.setattr(producer_module, "_register_exit_hooks", lambda producer, handle_sigterm: None)
    monkeypatch.delenv("METRICBATCH_QUEUE_URL", raising=False)
    monkeypatch.delenv("METRICBATCH_NAMESPACE", raising=False)
    made: list[MetricProducer] = []

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
        producer = MetricProducer(**settings)
        made.append(producer)
        return producer

    yield make
    for gate in {id(p._sqs): getattr(p._sqs, "gate", None) for p in made}.values():
        if gate is not None:
            gate.set()
    for producer in made:
        producer.close(timeout=2.0)
    for producer in made:
        assert producer._thread is None or not producer._thread.is_alive(), "a sender thread outlived its test"

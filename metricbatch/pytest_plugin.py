"""The ``metricbatch_metrics`` pytest fixture, registered as a plugin (``pytest11`` entry point) by the package.

For the test's duration: ``METRICBATCH_MODE=memory`` (so producers the code under test makes capture too), a
memory-mode default producer for ``send_metric``/``series``/``timer``, and an empty capture store; afterwards the
previous default producer and environment come back and the store is emptied, so no metric leaks into the next test.
Imports nothing from metricbatch until a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from metricbatch.testing import MetricsCapture


@pytest.fixture
def metricbatch_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetricsCapture]:
    """Metrics sent during the test, captured in memory: ``.captured(name=None, namespace=..., dimensions=...)``,
    ``.values(name)``, ``.clear()``."""
    from metricbatch.env import MODE
    from metricbatch.producer.default import set_default_producer
    from metricbatch.producer.producer import MetricProducer
    from metricbatch.testing import MetricsCapture, clear

    monkeypatch.setenv(MODE, "memory")
    clear()
    producer = MetricProducer(mode="memory")
    previous = set_default_producer(producer)
    try:
        yield MetricsCapture()
    finally:
        set_default_producer(previous)
        producer.close()
        clear()

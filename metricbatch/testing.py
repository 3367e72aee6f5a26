"""Asserting on metrics in tests: what ``memory`` mode captured.

In pytest, use the ``metricbatch_metrics`` fixture (installed with the package as a pytest plugin)::

    def test_checkout_counts_orders(metricbatch_metrics):
        checkout(order)  # calls send_metric("Orders", 1, unit="Count", namespace="Shop")
        assert metricbatch_metrics.values("Orders") == [1.0]

Elsewhere, set ``METRICBATCH_MODE=memory`` (or ``MetricProducer(mode="memory")``) and read ``captured()``; call
``clear()`` between tests. Validation in memory mode is exactly production's: a bad metric raises
``InvalidMetricError`` at the call.
"""

from __future__ import annotations

from collections.abc import Mapping

from metricbatch.producer.capture import STORE, CapturedMetric

__all__ = ["CapturedMetric", "MetricsCapture", "captured", "clear", "values"]


def captured(
    name: str | None = None, *, namespace: str | None = None, dimensions: Mapping[str, str] | None = None
) -> list[CapturedMetric]:
    """Every metric memory mode captured in this process, in the order sent (one per call), optionally only those
    with this name, namespace or exact dimensions."""
    return STORE.metrics(name, namespace=namespace, dimensions=dimensions)


def values(name: str, *, namespace: str | None = None, dimensions: Mapping[str, str] | None = None) -> list[float]:
    """The values of the captured metrics with this name (and namespace or dimensions), in the order sent."""
    return [metric.value for metric in captured(name, namespace=namespace, dimensions=dimensions)]


def clear() -> None:
    """Forget everything captured so far."""
    STORE.clear()


class MetricsCapture:
    """What the ``metricbatch_metrics`` fixture yields: ``captured``, ``values`` and ``clear`` of this test."""

    captured = staticmethod(captured)
    values = staticmethod(values)
    clear = staticmethod(clear)

    def __len__(self) -> int:
        return len(captured())

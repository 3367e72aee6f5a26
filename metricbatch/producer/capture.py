"""What ``memory`` mode keeps: every accepted metric as it was sent, one process-wide store for tests to read.

``metricbatch.testing.captured()`` reads it and ``clear()`` empties it; the ``metricbatch_metrics`` pytest fixture
does both around each test. A forked child starts with an empty store (a process sees only what it accepted).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

# Memory mode is meant for tests, but must not grow without end if a service runs in it: beyond this many metrics
# it drops (and counts) further ones.
MAX_CAPTURED: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class CapturedMetric:
    """One accepted ``send_metric`` call (or ``series(...).send``), after validation."""

    namespace: str
    name: str
    value: float
    unit: str = "None"
    dimensions: Mapping[str, str] = field(default_factory=dict)
    timestamp: float = 0.0  # epoch seconds, as given (default: when it was sent)
    storage_resolution: int = 60


class CaptureStore:
    """A bounded, thread-safe list of captured metrics."""

    def __init__(self, limit: int = MAX_CAPTURED) -> None:
        self._limit = limit
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._metrics: list[CapturedMetric] = []

    def add(self, metric: CapturedMetric) -> bool:
        """Keep ``metric``; False when the store is full (the caller counts it as dropped)."""
        with self._lock:
            if len(self._metrics) >= self._limit:
                return False
            self._metrics.append(metric)
        return True

    def metrics(
        self, name: str | None = None, *, namespace: str | None = None, dimensions: Mapping[str, str] | None = None
    ) -> list[CapturedMetric]:
        """The captured metrics in the order they were sent, optionally only one name, namespace or dimensions."""
        with self._lock:
            metrics = list(self._metrics)
        wanted = None if dimensions is None else dict(dimensions)
        return [
            m
            for m in metrics
            if (name is None or m.name == name)
            and (namespace is None or m.namespace == namespace)
            and (wanted is None or dict(m.dimensions) == wanted)
        ]

    def clear(self) -> None:
        with self._lock:
            self._metrics.clear()

    def reset_after_fork(self) -> None:
        self._reset()


STORE: Final = CaptureStore()
os.register_at_fork(after_in_child=STORE.reset_after_fork)

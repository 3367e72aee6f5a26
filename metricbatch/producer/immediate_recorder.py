"""``memory`` and ``off`` modes: each metric is validated and handled on the caller's thread; no buffer, no thread.

``memory`` keeps it in the process-wide capture store (``metricbatch.testing.captured()``); ``off`` counts it as
discarded. Validation is the same code as in the buffered modes, so a test in ``memory`` mode catches exactly the
metrics production would reject.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from metricbatch.exceptions import InvalidMetricError
from metricbatch.producer.capture import STORE, CapturedMetric, CaptureStore
from metricbatch.producer.counters import COUNTERS, CounterName, Counts
from metricbatch.producer.series import BufferedSeries, checked_sample


class ImmediateRecorder:
    """Captures (``capture=True``, memory mode) or discards (off mode) each valid metric as it arrives.

    ``undelivered``: the mode was chosen because a setting is missing, so ``flush()`` reports the discarded metrics
    as not delivered (False), as it would for any metric that did not reach its destination.
    """

    def __init__(
        self, *, capture: bool, undelivered: bool, clock: Callable[[], float], store: CaptureStore = STORE
    ) -> None:
        self._capture = capture
        self._undelivered = undelivered
        self._clock = clock
        self._store = store
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[CounterName, int] = dict.fromkeys(COUNTERS, 0)
        self._accepted = 0
        self._flush_mark = 0

    def record(self, series: BufferedSeries, value: float, timestamp: datetime | float | None) -> bool:
        """Validate one metric and capture or discard it; never wakes anything (returns False)."""
        try:
            value, ts = checked_sample(value, timestamp, self._clock)
        except InvalidMetricError:
            self.count({"invalid": 1})
            raise
        if not self._capture:
            counter: CounterName = "discarded"
        else:
            key = series.key
            metric = CapturedMetric(key.namespace, key.name, value, key.unit, dict(key.dimensions), ts, key.resolution)
            counter = "captured" if self._store.add(metric) else "dropped_buffer_full"
        with self._lock:
            self._accepted += 1
            self._counters[counter] += 1
            if counter == "dropped_buffer_full":
                self._counters["dropped"] += 1
        return False

    def count(self, counts: Counts) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counters[name] += n

    def stats(self) -> dict[str, int]:
        with self._lock:
            counters: dict[str, int] = dict(self._counters.items())
            counters.update(buffered=0, buffered_values=0, accepted=self._accepted)
        return counters

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing is ever pending; False when metrics were not delivered since the previous flush (dropped, or
        discarded because a setting is missing)."""
        with self._lock:
            lost = self._counters["dropped"] + (self._counters["discarded"] if self._undelivered else 0)
            fresh, self._flush_mark = lost - self._flush_mark, lost
        return fresh == 0

    def close(self, timeout: float | None = None) -> None:
        """Nothing to send."""

    def end_for_signal(self, timeout: float | None = None) -> None:
        """Nothing is buffered: nothing to do."""

    def resume_after_signal(self) -> None:
        """Nothing was sealed."""

    def wake(self) -> None:
        """No thread to wake."""

    @property
    def blocked(self) -> str:
        return ""

    def prepare_fork(self) -> None:
        """Nothing to hold across fork()."""

    def parent_after_fork(self) -> None:
        """Nothing was held."""

    def reset_after_fork(self) -> None:
        """In a forked child: counters start at zero, as in the buffered modes."""
        self._reset()

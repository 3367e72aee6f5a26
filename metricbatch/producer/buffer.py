"""The producer's buffer: metrics held as value -> count histograms per series and time bucket, and its counters.

No Python object is kept per metric (a value is a key of its bucket's histogram, its count a small int), so a
burst of metrics does not feed the cyclic garbage collector. One lock guards the histograms and every counter:
callers' threads and the sender thread change them only under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from metricbatch.exceptions import InvalidMetricError
from metricbatch.producer.series import BufferedSeries
from metricbatch.validation import check_timestamp, check_value

COUNTERS: Final = (
    "sent",  # metrics SQS accepted
    "fallback_published",  # metrics published directly with PutMetricData because SQS was unavailable
    "dropped",  # metrics lost: the buffer was full, or SQS and CloudWatch were both unavailable
    "dropped_buffer_full",
    "dropped_undeliverable",
    "invalid",  # calls rejected with InvalidMetricError
    "send_errors",
    "sqs_requests",
    "messages_sent",
    "wire_entries",  # wire metrics (one per series, bucket and up to 150 values) in the messages SQS accepted
    "wire_bytes",  # bytes of the message bodies SQS accepted
    "put_metric_data_calls",
    "sender_rounds",  # times the sender took what was pending
)

Histograms = dict[tuple[BufferedSeries, float], dict[float, int]]


@dataclass(frozen=True, slots=True)
class Taken:
    """What the sender took in one round: the histograms, the metrics and distinct values they hold, the mark."""

    histograms: Histograms
    samples: int
    values: int
    upto: int


class MetricBuffer:
    """Bounded by memory: at most ``max_values`` distinct values (per series and bucket) held, counting those the
    sender is still delivering. A value already held only raises its count, so it always fits."""

    def __init__(self, max_values: int, wake_threshold: int, clock: Callable[[], float]) -> None:
        self._max = max_values
        self._wake_at = wake_threshold
        self._clock = clock
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._histograms: Histograms = {}
        self._generation += 1  # never reused: a series' cached histogram of an older generation is stale
        self._pending = 0  # metrics not yet taken by the sender
        self._pending_values = 0  # distinct values among them
        self._held = 0  # metrics pending plus taken but not yet settled
        self._held_values = 0  # distinct values among them: what the bound applies to
        self._accepted = 0
        self._handled = 0  # every metric accepted up to this mark is delivered or dropped
        self._wants_sender = True  # the next accepted metric asks for the sender (it starts lazily)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._flush_drop_mark = 0

    # -- the caller's side ----------------------------------------------------------------------------------------
    def record(self, series: BufferedSeries, value: float, timestamp: datetime | float | None) -> bool:
        """Validate and hold one metric; True when the sender should be woken (or started)."""
        try:
            value = check_value(value)
            ts = self._clock() if timestamp is None else check_timestamp(timestamp, self._clock())
        except InvalidMetricError:
            self.count({"invalid": 1})
            raise
        bucket = ts - ts % series.resolution
        with self._lock:
            if series.generation == self._generation and series.bucket == bucket:
                histogram = series.histogram
            else:
                histogram = self._open(series, bucket)
            count = histogram.get(value)
            if count is not None:
                histogram[value] = count + 1
            elif self._held_values < self._max:
                histogram[value] = 1
                self._held_values += 1
                self._pending_values += 1
            else:
                self._counters["dropped"] += 1
                self._counters["dropped_buffer_full"] += 1
                return False
            self._held += 1
            self._pending += 1
            self._accepted += 1
            if self._wake_at in (self._pending_values, self._pending) or self._wants_sender:
                self._wants_sender = False
                return True
        return False

    def _open(self, series: BufferedSeries, bucket: float) -> dict[float, int]:
        histogram = self._histograms.get((series, bucket))
        if histogram is None:
            histogram = self._histograms[(series, bucket)] = {}
        series.generation, series.bucket, series.histogram = self._generation, bucket, histogram
        return histogram

    # -- counters: changed only under the lock ----------------------------------------------------------------------
    def count(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counters[name] += n

    def drop_counts(self) -> tuple[int, int, int]:
        """(dropped, of which the buffer was full, of which undeliverable)."""
        with self._lock:
            c = self._counters
            return c["dropped"], c["dropped_buffer_full"], c["dropped_undeliverable"]

    def stats(self) -> dict[str, int]:
        with self._lock:
            counters = dict(self._counters)
            counters["buffered"] = self._held
            counters["buffered_values"] = self._held_values
            counters["accepted"] = self._accepted
        return counters

    # -- the sender's side ------------------------------------------------------------------------------------------
    def take(self) -> Taken | None:
        """Everything pending, for one sender round (None when nothing is)."""
        with self._lock:
            if not self._pending:
                return None
            taken = Taken(self._histograms, self._pending, self._pending_values, self._accepted)
            self._histograms = {}
            self._generation += 1
            self._pending = self._pending_values = 0
            self._counters["sender_rounds"] += 1
        return taken

    def settle(self, taken: Taken, counts: Mapping[str, int]) -> None:
        """The sender is done with ``taken``: free its room, record what happened, wake flushers."""
        with self._lock:
            self._held -= taken.samples
            self._held_values -= taken.values
            self._handled = taken.upto
            for name, n in counts.items():
                self._counters[name] += n
            self._changed.notify_all()

    def want_sender(self) -> None:
        """The sender stopped: the next accepted metric asks for one again."""
        with self._lock:
            self._wants_sender = True

    @property
    def pending(self) -> int:
        return self._pending

    # -- flush --------------------------------------------------------------------------------------------------------
    def flush_target(self) -> int:
        """The accepted mark flush() waits for: every metric accepted before now."""
        with self._lock:
            return self._accepted

    def wait_handled(self, target: int, timeout: float | None) -> bool:
        """Block until everything accepted up to ``target`` is delivered or dropped; False if ``timeout`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: self._handled >= target, timeout)

    def drops_since_last_flush(self) -> int:
        with self._lock:
            dropped = self._counters["dropped"] - self._flush_drop_mark
            self._flush_drop_mark = self._counters["dropped"]
        return dropped

    # -- fork ---------------------------------------------------------------------------------------------------------
    def reset_after_fork(self) -> None:
        """In a forked child: what was held and counted belongs to the parent (which sends it); fresh locks."""
        self._reset()

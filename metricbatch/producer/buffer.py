"""The producer's buffer: metrics held as value -> count histograms per series and time bucket, and its counters.

No Python object is kept per metric (a value is a key of its bucket's histogram, its count a small int), so a
burst of metrics does not feed the cyclic garbage collector. One lock guards the histograms and every counter:
callers' threads and the sender thread change them only under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from metricbatch.exceptions import InvalidMetricError
from metricbatch.producer.counters import COUNTERS, CounterName, Counts
from metricbatch.producer.series import BufferedSeries
from metricbatch.validation import check_timestamp, check_value

Histograms = dict[tuple[BufferedSeries, float], dict[float, int]]
# (series, bucket, values, counts): a part of a histogram handed back to the buffer
HistogramPart = tuple[BufferedSeries, float, list[float], list[int]]


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
        self._counters: dict[CounterName, int] = dict.fromkeys(COUNTERS, 0)
        self._flush_drop_mark = 0
        self._blocked = ""  # why what is held cannot be delivered until a setting is fixed ("" when it can)
        self._holds = 0  # times the sender handed metrics back for a wrong setting

    # -- the caller's side ----------------------------------------------------------------------------------------
    def record(self, series: BufferedSeries, value: float, timestamp: datetime | float | None) -> bool:
        """Validate and hold one metric; True when the sender should be woken (or started)."""
        try:  # series.checked_sample, inlined: this is the hot path (one call less is ~10% of it)
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

    def record_counts(self, series: BufferedSeries, counts: Mapping[float, int], timestamp: float) -> bool:
        """Hold samples a source counted itself (value -> how many), all at ``timestamp``: the AWS SDK call tally.
        The values are the source's own, checked already. A value that does not fit the bound is dropped with its
        count. True when the sender should be woken."""
        bucket = timestamp - timestamp % series.resolution
        with self._lock:
            histogram = self._open(series, bucket)
            pending, pending_values = self._pending, self._pending_values
            for value, n in counts.items():
                known = histogram.get(value)
                if known is not None:
                    histogram[value] = known + n
                elif self._held_values < self._max:
                    histogram[value] = n
                    self._held_values += 1
                    self._pending_values += 1
                else:
                    self._counters["dropped"] += n
                    self._counters["dropped_buffer_full"] += n
                    continue
                self._held += n
                self._pending += n
                self._accepted += n
            wake_at = self._wake_at  # crossed by these samples, or the sender not started
            crossed = pending < wake_at <= self._pending or pending_values < wake_at <= self._pending_values
            if crossed or self._wants_sender:
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
    def count(self, counts: Counts) -> None:
        with self._lock:
            for name, n in counts.items():
                self._counters[name] += n

    def drop_counts(self) -> tuple[int, int, int, int]:
        """(dropped, of which the buffer was full, undeliverable, held for a wrong setting until close)."""
        with self._lock:
            c = self._counters
            return c["dropped"], c["dropped_buffer_full"], c["dropped_undeliverable"], c["dropped_misconfigured"]

    def stats(self) -> dict[str, int]:
        with self._lock:
            counters: dict[str, int] = dict(self._counters.items())
            counters["buffered"] = self._held
            counters["buffered_values"] = self._held_values
            counters["accepted"] = self._accepted
        return counters

    # -- the sender's side ------------------------------------------------------------------------------------------
    def take(self, before: float | None = None) -> Taken | None:
        """Everything pending, for one sender round (None when nothing is); with ``before``, only the buckets that
        start before it (a minute-aligned round takes the finished minutes and leaves the current one to fill)."""
        with self._lock:
            if not self._pending:
                return None
            if before is None:
                taken = Taken(self._histograms, self._pending, self._pending_values, self._accepted)
                self._histograms = {}
                self._pending = self._pending_values = 0
            else:
                histograms = {key: h for key, h in self._histograms.items() if key[1] < before}
                if not histograms:
                    return None
                samples = sum(sum(h.values()) for h in histograms.values())
                values = sum(len(h) for h in histograms.values())
                # What stays pending was accepted before this mark too: flush's mark does not move.
                taken = Taken(histograms, samples, values, self._handled)
                self._histograms = {key: h for key, h in self._histograms.items() if key[1] >= before}
                self._pending -= samples
                self._pending_values -= values
            self._generation += 1
            self._counters["sender_rounds"] += 1
        return taken

    def settle(self, taken: Taken, counts: Counts) -> None:
        """The sender is done with ``taken``: free its room, record what happened, wake flushers."""
        with self._lock:
            self._held -= taken.samples
            self._held_values -= taken.values
            self._handled = taken.upto
            self._blocked = ""
            for name, n in counts.items():
                self._counters[name] += n
            self._changed.notify_all()

    def hold(self, taken: Taken, parts: Iterable[HistogramPart], counts: Counts, reason: str) -> None:
        """The sender could not deliver ``parts`` of ``taken`` for a reason no retry fixes (a wrong setting): they
        are pending again, inside the bound, until the sender offers them again; flushers are told at once."""
        with self._lock:
            self._held -= taken.samples
            self._held_values -= taken.values
            for series, bucket, values, value_counts in parts:
                histogram = self._histograms.get((series, bucket))
                if histogram is None:
                    histogram = self._histograms[(series, bucket)] = {}
                for value, n in zip(values, value_counts, strict=True):
                    known = histogram.get(value)
                    if known is None:
                        histogram[value] = n
                        self._held_values += 1
                        self._pending_values += 1
                    else:
                        histogram[value] = known + n
                    self._held += n
                    self._pending += n
            for name, n in counts.items():
                self._counters[name] += n
            self._blocked = reason
            self._holds += 1
            self._changed.notify_all()

    def abandon(self) -> int:
        """At close, while a wrong setting blocks delivery: count everything still held as dropped; how many."""
        with self._lock:
            if not self._blocked or not self._pending:
                return 0
            lost = self._pending
            self._histograms = {}
            self._generation += 1
            self._held -= lost
            self._held_values -= self._pending_values
            self._pending = self._pending_values = 0
            self._handled = self._accepted
            for name in ("dropped", "dropped_misconfigured"):
                self._counters[name] += lost
            self._changed.notify_all()
        return lost

    @property
    def blocked(self) -> str:
        """Why held metrics cannot be delivered until a setting is fixed; "" when they can."""
        return self._blocked

    def want_sender(self) -> None:
        """The sender stopped: the next accepted metric asks for one again."""
        with self._lock:
            self._wants_sender = True

    @property
    def pending(self) -> int:
        return self._pending

    # -- the end of a process killed by a signal -----------------------------------------------------------------------
    def seal(self, timeout: float) -> tuple[Taken | None, int]:
        """Accept nothing more: take the lock and keep it (``unseal`` gives it back), so every later ``record()`` (and
        every other method) waits, and nothing is accepted that could not be sent. First waits up to ``timeout`` for
        the sender's round in flight. Returns what is pending, taken, and how many metrics were still in flight."""
        self._lock.acquire()
        self._changed.wait_for(lambda: self._held == self._pending, timeout)
        in_flight = self._held - self._pending
        taken = None
        if self._pending:
            taken = Taken(self._histograms, self._pending, self._pending_values, self._accepted)
            self._histograms = {}
            self._generation += 1
            self._pending = self._pending_values = 0
            self._held -= taken.samples  # the caller delivers or counts them while it holds the lock
            self._held_values -= taken.values
            if not in_flight:
                self._handled = taken.upto
        return taken, in_flight

    def count_sealed(self, counts: Counts) -> tuple[int, int, int, int, int]:
        """While sealed: add ``counts``; the drop counts as ``drop_counts()`` gives them, plus dropped at exit."""
        c = self._counters
        for name, n in counts.items():
            c[name] += n
        return (
            c["dropped"],
            c["dropped_buffer_full"],
            c["dropped_undeliverable"],
            c["dropped_misconfigured"],
            c["dropped_at_exit"],
        )

    def unseal(self) -> None:
        """The process survived its signal after all: accept metrics again."""
        self._lock.release()

    # -- flush --------------------------------------------------------------------------------------------------------
    def flush_target(self) -> int:
        """The accepted mark flush() waits for: every metric accepted before now."""
        with self._lock:
            return self._accepted

    def hold_mark(self) -> int:
        """How often metrics were handed back so far: pass to ``wait_handled`` to wait out a retry that is due."""
        with self._lock:
            return self._holds

    def wait_handled(self, target: int, timeout: float | None, retry_mark: int | None = None) -> bool:
        """Block until everything accepted up to ``target`` is delivered or dropped; False if ``timeout`` ran out or
        a wrong setting blocks delivery (waiting would not help). With ``retry_mark`` (a ``hold_mark()`` taken before
        a retry was asked for) a block that was there already does not end the wait: the retry's outcome does."""

        def over() -> bool:
            return self._handled >= target or (bool(self._blocked) and self._holds != retry_mark)

        with self._changed:
            done = self._changed.wait_for(over, timeout)
            return done and self._handled >= target

    def drops_since_last_flush(self) -> int:
        with self._lock:
            dropped = self._counters["dropped"] - self._flush_drop_mark
            self._flush_drop_mark = self._counters["dropped"]
        return dropped

    # -- fork ---------------------------------------------------------------------------------------------------------
    def reset_after_fork(self) -> None:
        """In a forked child: what was held and counted belongs to the parent (which sends it); fresh locks."""
        self._reset()

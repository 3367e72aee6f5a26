"""The sender thread: takes what the buffer holds each round and hands it to the delivery chain.

A round starts on the flush interval, when a quarter of the buffer's bound is pending, on ``flush()``, at exit
and on SIGTERM. Drops are logged from here, never from the caller's thread: at most one line per
``drop_log_interval`` with the count since the previous line and the running total.

When SQS refuses the queue for a reason no retry can fix (a wrong setting, see destinations.py), the metrics are
held in the buffer, inside its bound, and offered again once per ``retry_interval``: one ERROR line says so when it
starts, one WARNING when the queue accepts them again. Nothing goes to the PutMetricData fallback meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from metricbatch.producer.buffer import MetricBuffer
from metricbatch.producer.destinations import DeliveryChain
from metricbatch.producer.encoding import entries_of
from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

# A minute-aligned round starts this long after the boundary: a metric stamped just before it is in the buffer.
ALIGNED_ROUND_DELAY_SECONDS = 0.25


class DropLog:
    """Rate-limited drop lines: each with the count since the previous line and the total."""

    def __init__(
        self,
        buffer: MetricBuffer,
        interval: float,
        monotonic: Callable[[], float],
        undeliverable: str = "SQS and CloudWatch unavailable",
    ) -> None:
        self._buffer = buffer
        self._undeliverable = undeliverable  # why the mode's destinations could not take metrics, for the log
        self._interval = interval
        self._monotonic = monotonic
        self._reported = (0, 0, 0)
        self._last_line: float | None = None
        self.last_error = ""

    def report(self, *, final: bool = False, sealed: tuple[int, int, int, int, int] | None = None) -> None:
        """A line if metrics were dropped since the last one (paced); ``final``: one line with the totals, if any.
        ``sealed``: the final counts, read by the caller who holds the buffer's lock (``MetricBuffer.count_sealed``)."""
        dropped, full, undeliverable, misconfigured, at_exit = sealed or (*self._buffer.drop_counts(), 0)
        if final or sealed:
            if dropped:
                held = f", held for a wrong setting until exit: {misconfigured}" if misconfigured else ""
                unanswered = f", still being sent when the process ended: {at_exit}" if at_exit else ""
                logger.error(
                    "metricbatch dropped %d metric(s) in total (buffer full: %d, %s: %d%s%s)",
                    dropped, full, self._undeliverable, undeliverable, held, unanswered,
                )  # fmt: skip
            return
        new = dropped - self._reported[0]
        now = self._monotonic()
        if not new or (self._last_line is not None and now - self._last_line < self._interval):
            return
        why = []
        if full - self._reported[1]:
            held = " while a wrong setting holds delivery" if self._buffer.blocked else ""
            why.append(f"buffer full{held}: {full - self._reported[1]}")
        if undeliverable - self._reported[2]:
            why.append(f"{self._undeliverable}: {undeliverable - self._reported[2]} ({self.last_error})")
        logger.error(
            "metricbatch dropped %d metric(s) since the last report (%s); %d in total", new, ", ".join(why), dropped
        )
        self._reported, self._last_line = (dropped, full, undeliverable), now

    def reset_after_fork(self) -> None:
        self._reported, self._last_line, self.last_error = (0, 0, 0), None, ""


class Sender:
    """One daemon thread per producer and process; started lazily by the first metric, again after fork()."""

    def __init__(
        self,
        buffer: MetricBuffer,
        chain: DeliveryChain,
        *,
        interval: float,
        drop_log: DropLog,
        on_start: Callable[[], None],
        retry_interval: float,
        monotonic: Callable[[], float],
        clock: Callable[[], float] | None = None,
        aligned: bool = False,
        collect: Callable[[], None] | None = None,
    ) -> None:
        self._buffer = buffer
        self._collect = collect  # sources that count for themselves hand their counts to the buffer first
        self._chain = chain
        self._interval = interval
        # Minute-aligned rounds (interval a multiple of 60 s): due on the wall clock's boundaries, each takes only
        # the finished buckets, so a producer sends one partial aggregate per series-minute, not one per round.
        self._clock = clock
        self._aligned = aligned and clock is not None
        self._drop_log = drop_log
        self._on_start = on_start
        self._retry_interval = retry_interval
        self._monotonic = monotonic
        self._reset()

    def _reset(self) -> None:
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_retry = 0.0  # while a wrong setting blocks delivery: when to offer the held metrics again
        self._said = ""  # the wrong setting the last ERROR line named

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wake(self) -> None:
        """Start a round now; in a process without a sender thread, start one (its first round: the interval)."""
        if self.alive:
            self._wake.set()
        else:
            self.start()

    def retry_due(self) -> bool:
        """Whether metrics held for a wrong setting are due to be offered again (False when none are held)."""
        return bool(self._buffer.blocked) and self._monotonic() >= self._next_retry

    def round_now(self) -> None:
        """Start a round now, starting the thread if need be (flush)."""
        if not self.alive:
            self.start()
        self._wake.set()

    def start(self) -> None:
        with self._lock:
            if self.alive:
                return
            self._stopping = False
            self._thread = start_daemon(self._run, "metricbatch-sender")
        self._on_start()

    def stop(self, join_timeout: float = 1.0) -> None:
        """Finish the current round (and anything pending), then end the thread."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=join_timeout)

    def _run(self) -> None:
        self._warm_up()
        while True:
            woken = True
            if not self._stopping:  # stopping: drain without waiting out the interval
                woken = self._wake.wait(self._next_wait())
            self._wake.clear()
            try:
                self.run_round(before=self.round_boundary() if self._aligned and not woken else None)
            except Exception:  # pragma: no cover - a bug must not kill the sender silently
                logger.exception("metricbatch sender failed; continuing")
            if self._stopping and (not self._buffer.pending or self._buffer.blocked):
                return

    def round_boundary(self) -> float:
        """The start of the current round period on the wall clock (what a timed aligned round takes is before it)."""
        assert self._clock is not None
        now = self._clock()
        return now - now % self._interval

    def _next_wait(self) -> float:
        if not self._aligned:
            return self._interval
        assert self._clock is not None
        now = self._clock()
        return self._interval - now % self._interval + ALIGNED_ROUND_DELAY_SECONDS

    def _warm_up(self) -> None:
        # Make the clients (imports, models, credentials) now, not when the first round is already due.
        try:
            self._chain.prepare()
        except Exception as exc:  # the first round reports it
            logger.debug("metricbatch sender warm-up failed: %s", exc)

    def run_round(self, before: float | None = None) -> None:
        """Deliver everything pending now (with ``before``: the buckets that start before it), then log drops if it
        is time.

        One take per round: what arrives meanwhile waits for the next interval, unless it reaches the wake
        threshold (the caller then wakes the sender again) or a flush asks for it.
        """
        if self._collect is not None:
            self._collect()
        retrying = bool(self._buffer.blocked)
        if retrying and self._monotonic() < self._next_retry:
            self._drop_log.report()
            return
        taken = self._buffer.take(before)
        if taken is not None:
            result = self._chain.deliver(entries_of(taken.histograms))
            if retrying:
                result.counts["queue_retries"] = result.counts.get("queue_retries", 0) + 1
            if result.blocked:
                self._blocked(result.blocked)  # first: a flush woken by hold() then finds it said and timed
                held = [(entry.series, entry.bucket, entry.values, entry.counts) for entry in result.held]
                self._buffer.hold(taken, held, result.counts, result.blocked)
            else:
                if result.dropped:
                    self._drop_log.last_error = result.error
                if self._said:  # first: a flush woken by settle() then finds it said
                    logger.warning("metricbatch: SQS no longer refuses the queue; delivery resumed")
                    self._said = ""
                self._buffer.settle(taken, result.counts)
        self._drop_log.report()

    def _blocked(self, reason: str) -> None:
        self._next_retry = self._monotonic() + self._retry_interval
        if reason == self._said:
            return
        self._said = reason
        logger.error(
            "metricbatch cannot deliver to SQS: %s. Metrics are held in memory (within the producer's bound of "
            "distinct values; beyond it new values are dropped and counted) and not published directly with "
            "PutMetricData; the queue is tried again every %g s and sending resumes once it accepts them",
            reason, self._retry_interval,
        )  # fmt: skip

    def reset_after_fork(self) -> None:
        """In a forked child the parent's thread does not exist: forget it; fresh event and lock."""
        self._reset()

"""The AWS SDK call tally: each API call noted in a queue on the calling thread; counted per series and minute and
handed to the producer's buffer before each sender round and each flush.

Why not three ``SeriesHandle.send`` per call: inside botocore's pipeline (~250 µs of Python per call, which leaves
our objects cold in the CPU's caches) three buffered samples cost 9-13 µs per call, and even one lock and one
histogram update per call about 4.5, measured side by side; the budget is 5 (issue 24). Appending a tuple to a
``deque`` (thread-safe without a lock) costs about 2. The counting happens in bulk, on the sender's thread each
round (or on a calling thread when ``MAX_PENDING_CALLS`` are waiting, which bounds the memory), and the buffer gets
what the calls came to (value -> calls), whatever their number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from metricbatch.producer.series import BufferedSeries

if TYPE_CHECKING:
    from metricbatch.producer.buffered_recorder import BufferedRecorder

# (what names the service, OperationName, ErrorType or None when the call succeeded): the caller's, cheap to build
# on its hot path; ``series_of`` turns it into series.
CallKey = tuple[Hashable, str, str | None]
# One call as noted: key's three parts, its end on the producer's clock, duration (ms), retries.
NotedCall = tuple[Hashable, str, str | None, float, float, int]
# The series a key's calls are recorded under: ApiCallDuration, ApiCallSuccessful, RetryCount; and
# ApiCallSuccessful's value for the key (1.0 or 0.0).
CallSeries = tuple[BufferedSeries, BufferedSeries, BufferedSeries, float]
MINUTE_SECONDS = 60.0  # the SDK metrics' storage resolution
# Calls noted before the calling thread counts them itself: ~150 bytes each, so at most ~1.5 MB waits for a round.
MAX_PENDING_CALLS = 10_000


class ApiCallTally:
    """One producer's API calls since its last round (a ``Collector`` of its ``BufferedRecorder``).

    The calling thread appends ``NotedCall`` tuples to ``pending`` (instrument._measured_call does it inline) and
    calls ``noted()`` when the queue was empty or is full.

    Args:
        recorder: the producer's buffered recorder (sqs and emf modes).
        series_of: the series of a key (validated once, cached by the caller); may raise.
        clock: the producer's wall clock (``clock``: what a call's end is noted on, for its minute).
        on_error: told when a key's calls cannot be recorded (a series fails validation); never raises.
    """

    __slots__ = ("_on_error", "_recorder", "_series_of", "clock", "pending")

    def __init__(
        self,
        recorder: BufferedRecorder,
        series_of: Callable[[CallKey], CallSeries],
        clock: Callable[[], float],
        *,
        on_error: Callable[[Exception], None],
    ) -> None:
        self._recorder = recorder
        self._series_of = series_of
        self.clock = clock
        self._on_error = on_error
        self.pending: deque[NotedCall] = deque()

    def add(self, key: CallKey, elapsed_ms: float, retries: int) -> None:
        """Note one call that just ended (what instrument._measured_call does inline on its hot path)."""
        pending = self.pending
        first = not pending
        pending.append((*key, self.clock(), elapsed_ms, retries))
        if first or len(pending) >= MAX_PENDING_CALLS:
            self.noted(first)

    def noted(self, first: bool) -> None:
        """After a call was appended: the first since the last round makes sure the sender runs (its rounds
        collect; it starts lazily), a full queue is counted now, on the calling thread."""
        if first:
            self._recorder.start_sender()
        if len(self.pending) >= MAX_PENDING_CALLS:
            self.collect()

    def collect(self) -> None:
        """Count what was noted so far and hand it to the buffer (before a round, a flush, at close, exit and
        SIGTERM). Safe beside the appending threads and another collect (each call is taken once)."""
        pending = self.pending
        # (minute, key) -> durations (ms -> calls), retries (retries -> calls)
        counted: dict[tuple[float, CallKey], tuple[dict[float, int], dict[int, int]]] = {}
        for _ in range(len(pending)):
            try:
                service, operation, error_type, end, elapsed_ms, retries = pending.popleft()
            except IndexError:  # another collect took the rest
                break
            minute_key = (end - end % MINUTE_SECONDS, (service, operation, error_type))
            histograms = counted.get(minute_key)
            if histograms is None:
                histograms = counted[minute_key] = ({}, {})
            durations = histograms[0]
            durations[elapsed_ms] = durations.get(elapsed_ms, 0) + 1
            retried = histograms[1]
            retried[retries] = retried.get(retries, 0) + 1
        record = self._recorder.record_counts
        for (minute, key), (durations, retried) in counted.items():
            try:
                duration, successful, retry_count, success = self._series_of(key)
            except Exception as exc:
                self._on_error(exc)
                continue
            record(duration, durations, minute)
            record(successful, {success: sum(durations.values())}, minute)
            record(retry_count, {float(n): calls for n, calls in retried.items()}, minute)

    def reset_after_fork(self) -> None:
        """In a forked child: what was noted is the parent's (it sends it)."""
        self.pending = deque()

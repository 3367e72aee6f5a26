"""``sqs`` and ``emf`` modes: metrics merged in the buffer on the caller's thread, delivered by the sender thread.

``sqs`` delivers through SQS (and PutMetricData while SQS is down), ``emf`` by writing EMF lines to stdout; the
buffer, the bound, the rounds, flush, exit and fork are the same for both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from metricbatch.producer import lifecycle
from metricbatch.producer.buffer import MetricBuffer
from metricbatch.producer.clients import ProcessClients
from metricbatch.producer.config import ProducerConfig
from metricbatch.producer.counters import CounterName, Counts
from metricbatch.producer.destinations import DeliveryChain
from metricbatch.producer.encoding import entries_of, samples_in
from metricbatch.producer.sender import DropLog, Sender
from metricbatch.producer.series import BufferedSeries, Record

logger = logging.getLogger(__name__)


class Collector(Protocol):
    """A source that counts samples itself (the AWS SDK call tally) and hands the counts to the buffer when asked:
    before each sender round and each flush (so flush, close, exit and SIGTERM deliver them too)."""

    def collect(self) -> None:
        """Record what was counted since the last call (``BufferedRecorder.record_counts``); must not raise."""

    def reset_after_fork(self) -> None:
        """In a forked child: what was counted is the parent's, which sends it."""


class BufferedRecorder:
    """The buffer, its sender thread and the delivery chain of one producer."""

    def __init__(
        self,
        config: ProducerConfig,
        chain: DeliveryChain,
        clients: ProcessClients | None,
        *,
        owner: lifecycle.Closable,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        undeliverable: str = "SQS and CloudWatch unavailable",
    ) -> None:
        self._config = config
        self._clients = clients
        self._owner = owner
        self._chain = chain
        self._buffer = MetricBuffer(config.max_buffered, config.wake_threshold, clock)
        self._drop_log = DropLog(self._buffer, config.drop_log_interval, monotonic, undeliverable)
        self._sender = Sender(
            self._buffer,
            chain,
            interval=config.flush_interval,
            drop_log=self._drop_log,
            on_start=self._on_start,
            retry_interval=config.queue_retry_interval,
            monotonic=monotonic,
            clock=clock,
            aligned=config.minute_aligned,
            collect=self.collect,
        )
        # The hot path calls the buffer directly: validate and hold one metric, True when ``wake`` is due.
        self.record: Record = self._buffer.record
        self.wake = self._sender.wake
        self._closed = False
        self._sealed = False
        self._collectors: list[Collector] = []

    # -- sources that count for themselves ----------------------------------------------------------------------------
    def add_collector(self, collector: Collector) -> None:
        self._collectors.append(collector)

    def collect(self) -> None:
        """Every collector hands on its counts (a failing one is logged and does not stop the others)."""
        for collector in tuple(self._collectors):
            try:
                collector.collect()
            except Exception:  # pragma: no cover - collectors do not raise; a bug must not stop the round
                logger.exception("metricbatch: a collector failed")

    def record_counts(self, series: BufferedSeries, counts: Mapping[float, int], timestamp: float) -> None:
        """Hold counted samples of ``series`` and of its roll-ups (``MetricBuffer.record_counts``)."""
        self._buffer.record_counts(series, counts, timestamp)
        for rollup in series.fanout:
            self._buffer.record_counts(rollup, counts, timestamp)

    def start_sender(self) -> None:
        """Make sure a sender thread runs (its rounds collect): once started it runs a round each interval."""
        self._sender.start()

    def count(self, counts: Counts) -> None:
        self._buffer.count(counts)

    def stats(self) -> dict[str, int]:
        return self._buffer.stats()

    @property
    def blocked(self) -> str:
        """Why held metrics wait for a setting to be fixed ("" when they do not)."""
        return self._buffer.blocked

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything buffered so far is delivered or dropped; True only when all of it was delivered
        (False: ``timeout`` ran out, metrics were dropped since the previous flush, or a wrong setting holds them)."""
        self.collect()
        target = self._buffer.flush_target()
        retry_mark = self._buffer.hold_mark() if self._sender.retry_due() else None
        if self._buffer.pending:
            self._sender.round_now()
        done = self._buffer.wait_handled(target, timeout, retry_mark)
        return self._buffer.drops_since_last_flush() == 0 and done

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the sender thread; logs the total dropped, if any. Idempotent."""
        if self._closed:
            return
        self.flush(self._config.exit_flush_timeout if timeout is None else timeout)
        self._closed = True
        self._sender.stop()
        self._buffer.abandon()  # held for a wrong setting: the process keeps nothing past close, say so
        self._buffer.want_sender()  # a metric sent after close() starts a sender again
        self._drop_log.report(final=True)

    def end_for_signal(self, timeout: float | None = None) -> None:
        """The process is about to die of a signal while other threads may still be sending: deliver everything
        accepted, then accept nothing more until it ends (a later ``send_metric`` waits, so nothing is accepted that
        could not be sent); one ERROR line gives the total of what could not be delivered, if any.

        Flushes what is pending (threads keep sending meanwhile), then seals the buffer (waiting for a round in
        flight, within the same ``timeout``) and delivers the rest on this thread.
        """
        if self._sealed:
            return  # a second signal while ending: this thread holds the buffer's lock already
        timeout = self._config.exit_flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        taken, in_flight = self._buffer.seal(max(0.0, deadline - time.monotonic()))
        self._sealed = True
        counts: dict[CounterName, int] = {}
        if taken is not None:
            result = self._chain.deliver(entries_of(taken.histograms))
            counts.update(result.counts)
            if result.blocked:  # a wrong setting: no retry can help before the process ends
                held = samples_in(result.held)
                counts["dropped"] = counts.get("dropped", 0) + held
                counts["dropped_misconfigured"] = counts.get("dropped_misconfigured", 0) + held
        if in_flight:
            counts["dropped"] = counts.get("dropped", 0) + in_flight
            counts["dropped_at_exit"] = in_flight
        self._drop_log.report(sealed=self._buffer.count_sealed(counts))

    def resume_after_signal(self) -> None:
        """The process survived the signal after all: accept metrics again."""
        if self._sealed:
            self._sealed = False
            self._buffer.unseal()

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def _on_start(self) -> None:
        self._closed = False
        lifecycle.register(self._owner, handle_sigterm=self._config.handle_sigterm)

    def prepare_fork(self) -> None:
        if self._clients is not None:
            self._clients.hold_for_fork()

    def parent_after_fork(self) -> None:
        if self._clients is not None:
            self._clients.release_after_fork()

    def reset_after_fork(self) -> None:
        """In a forked child: the inherited buffer and counters stay the parent's; new thread, locks, clients."""
        self._buffer.reset_after_fork()
        self._sender.reset_after_fork()
        self._drop_log.reset_after_fork()
        for collector in self._collectors:
            collector.reset_after_fork()
        if self._clients is not None:
            self._clients.forget_after_fork()
        self._closed = False

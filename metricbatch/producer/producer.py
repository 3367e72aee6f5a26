"""The producer: ``send_metric`` validates and buffers in microseconds; a daemon thread ships to SQS.

One bounded buffer and one daemon sender thread (the watchtower shape). A batch closes on the flush interval,
on a full message's worth of metrics, on ``flush()``, at interpreter exit and on SIGTERM. If SQS is unavailable
the sender publishes directly with PutMetricData (the fallback); only when both are down does it drop, counting
every dropped metric.
"""

from __future__ import annotations

import atexit

# boto3 imports concurrent.futures.thread, which registers an exit hook and fails once the interpreter is shutting
# down. The sender may create its clients exactly then (a script that exits right after send_metric), so import it
# here, on the caller's side, while registering is still allowed.
import concurrent.futures.thread  # noqa: F401
import itertools
import logging
import os
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from metricbatch.aws.sqs import OutgoingMessage, SqsBatchSender
from metricbatch.cloudwatch.aggregation import DatumAggregator
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.publisher import CloudWatchPublisher
from metricbatch.exceptions import ConfigurationError, InvalidMetricError
from metricbatch.limits import MAX_ABS_VALUE, MAX_SQS_MESSAGE_BYTES, MIN_ABS_VALUE, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.validation import (
    Dimensions,
    check_dimensions,
    check_name,
    check_namespace,
    check_resolution,
    check_timestamp,
    check_unit,
    check_value,
)
from metricbatch.wire import ENVELOPE_BYTES, envelope_of, metric_fragment, metric_prefix

logger = logging.getLogger(__name__)

_MAX_SERIES_CACHE = 10_000


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """A producer's settings; explicit arguments beat the environment."""

    queue_url: str
    namespace: str | None = None
    flush_interval: float = 1.0
    max_buffered: int = 100_000  # metrics buffered at most; beyond, new ones are dropped (53 MB peak in make bench)
    max_message_bytes: int = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES
    send_attempts: int = 4
    fallback: bool = True
    exit_flush_timeout: float = 5.0
    handle_sigterm: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> ProducerConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "queue_url": env.get("METRICBATCH_QUEUE_URL"),
            "namespace": env.get("METRICBATCH_NAMESPACE") or None,
        }
        values.update({k: v for k, v in explicit.items() if v is not None})
        if not values.get("queue_url"):
            raise ConfigurationError("no queue URL: pass queue_url= or set METRICBATCH_QUEUE_URL")
        return cls(**values)


# (prefix, namespace, name, dimensions, unit, resolution): what the sender needs for a series.
_Series = tuple[str, str, str, Dimensions, str, int]
# One buffered metric: (series, value, epoch timestamp)
_Item = tuple[_Series, float, float]


class MetricProducer:
    """Buffers metrics in memory and ships them to the metricbatch queue from a background thread.

    Args:
        queue_url: the pipeline's SQS queue; default ``METRICBATCH_QUEUE_URL``.
        namespace: default namespace for ``send_metric``; default ``METRICBATCH_NAMESPACE``.
        sqs_client, cloudwatch_client: boto3 clients to use (default: created from boto3's standard settings).
        **options: any ``ProducerConfig`` field, e.g. ``flush_interval=0.5`` or ``max_buffered=10_000``.
    """

    def __init__(
        self,
        queue_url: str | None = None,
        *,
        namespace: str | None = None,
        sqs_client: Any = None,
        cloudwatch_client: Any = None,
        **options: Any,
    ) -> None:
        self.config = ProducerConfig.from_env(queue_url=queue_url, namespace=namespace, **options)
        self._sqs = sqs_client
        self._cloudwatch = cloudwatch_client
        self._buffer: deque[_Item] = deque()
        self._series: dict[tuple[Any, ...], _Series] = {}
        self._accepted = itertools.count(1)  # next() is atomic under the GIL
        self._last_accepted = 0
        self._handled = 0  # items the sender has finished with (sent, published or dropped)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._wake_threshold = max(1, self.config.max_message_bytes // 120)
        self._thread: threading.Thread | None = None
        self._running = False
        self._closed = False
        self._counters = {
            "sent": 0,
            "dropped": 0,
            "fallback_published": 0,
            "send_errors": 0,
            "invalid": 0,
            "sqs_requests": 0,
            "messages_sent": 0,
            "put_metric_data_calls": 0,
        }
        self._last_drop_log = 0.0
        self._drops_since_log = 0
        self._lock = threading.Lock()

    # -- the caller's side: no network, no blocking -------------------------------------------------------------
    def send_metric(
        self,
        name: str,
        value: float,
        *,
        unit: str = "None",
        namespace: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        timestamp: datetime | float | None = None,
        storage_resolution: int = 60,
    ) -> None:
        """Validate one metric and buffer it; raises InvalidMetricError for anything CloudWatch would reject."""
        ns = self.config.namespace if namespace is None else namespace
        try:
            # The resolution's type is part of the key: True == 1 must not reuse a validated resolution-1 series.
            key: tuple[Any, ...] | None = (
                ns, name, unit, storage_resolution, type(storage_resolution),
                tuple(dimensions.items()) if dimensions else (),
            )  # fmt: skip
            series = self._series.get(key)  # type: ignore[arg-type]
        except (TypeError, AttributeError):  # unhashable or not a mapping: validation below says why
            key, series = None, None
        if series is None:
            series = self._new_series(key, ns, name, unit, storage_resolution, dimensions)
        # Fast path: a float within CloudWatch's magnitudes (NaN fails this); the rest, tiny values included (rounded
        # to 0), goes through check_value.
        if value.__class__ is not float or not (
            MIN_ABS_VALUE <= value <= MAX_ABS_VALUE or -MAX_ABS_VALUE <= value <= -MIN_ABS_VALUE or value == 0.0
        ):
            try:
                value = check_value(value)
            except InvalidMetricError:
                self._counters["invalid"] += 1
                raise
        if timestamp is None:
            ts = time.time()
        else:
            try:
                ts = check_timestamp(timestamp)
            except InvalidMetricError:
                self._counters["invalid"] += 1
                raise
        if len(self._buffer) >= self.config.max_buffered:
            self._drop(1, "buffer full")
            return
        self._buffer.append((series, value, ts))
        self._last_accepted = next(self._accepted)
        if not self._running:
            self._start()
        elif len(self._buffer) == self._wake_threshold:
            self._wake.set()

    def _new_series(
        self,
        key: tuple[Any, ...] | None,
        namespace: str | None,
        name: str,
        unit: str,
        resolution: int,
        dimensions: Mapping[str, str] | None,
    ) -> _Series:
        try:
            if namespace is None:
                raise InvalidMetricError(
                    "namespace.missing", "no namespace: pass namespace= or set METRICBATCH_NAMESPACE"
                )
            ns = check_namespace(namespace)
            checked_name = check_name(name)
            checked_unit = check_unit(unit)
            checked_resolution = check_resolution(resolution)
            dims = check_dimensions(dimensions)
        except InvalidMetricError:
            self._counters["invalid"] += 1
            raise
        series = (metric_prefix(ns, checked_name, dims, checked_unit, checked_resolution), ns, checked_name, dims,
                  checked_unit, checked_resolution)  # fmt: skip
        if key is not None:
            if len(self._series) >= _MAX_SERIES_CACHE:
                self._series.clear()
            self._series[key] = series
        return series

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything buffered so far is accepted by SQS, published by the fallback, or dropped.

        Returns False if ``timeout`` (seconds) ran out first.
        """
        target = self._last_accepted
        if self._handled >= target:
            return True
        if not self._running or self._thread is None or not self._thread.is_alive():
            self._start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._handled < target:
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
        return True

    def stats(self) -> dict[str, int]:
        """Counters: buffered, sent, dropped, fallback_published, send_errors, and more."""
        counters = dict(self._counters)
        counters["buffered"] = max(0, self._last_accepted - self._handled)
        counters["accepted"] = self._last_accepted
        return counters

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the sender thread; idempotent."""
        if self._closed:
            return
        self.flush(self.config.exit_flush_timeout if timeout is None else timeout)
        self._closed = True
        self._running = False
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    # -- the sender thread ----------------------------------------------------------------------------------------
    def _start(self) -> None:
        with self._lock:
            if self._running and self._thread is not None and self._thread.is_alive():
                return
            self._closed = False
            self._running = True
            self._thread = threading.Thread(target=self._run, name="metricbatch-sender", daemon=True)
            self._thread.start()
            _register_exit_hooks(self, self.config.handle_sigterm)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.config.flush_interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # pragma: no cover - a bug must not kill the sender silently
                logger.exception("metricbatch sender failed; continuing")
            if self._closed and not self._buffer:
                return

    def _drain(self) -> None:
        while self._buffer:
            items = self._take()
            messages = self._encode(items)
            sent, failed = self._send_to_sqs(messages)
            self._counters["sent"] += sent
            if failed:
                self._fallback([item for m in failed for item in m.context])
            with self._cond:
                self._handled += len(items)
                self._cond.notify_all()

    def _take(self) -> list[_Item]:
        # Take what a few SendMessageBatch calls carry; leave the rest for the next round.
        limit = self._wake_threshold * 3
        popleft = self._buffer.popleft
        items = []
        try:
            for _ in range(limit):
                items.append(popleft())
        except IndexError:
            pass
        return items

    def _encode(self, items: list[_Item]) -> list[OutgoingMessage]:
        messages: list[OutgoingMessage] = []
        limit = self.config.max_message_bytes - ENVELOPE_BYTES
        fragments: list[str] = []
        carried: list[_Item] = []
        size = 0
        for item in items:
            series, value, ts = item
            fragment = metric_fragment(series[0], value, ts)
            added = len(fragment) + 1
            if fragments and size + added > limit:
                messages.append(OutgoingMessage(body=envelope_of(fragments), context=carried))
                fragments, carried, size = [], [], 0
            fragments.append(fragment)
            carried.append(item)
            size += added
        if fragments:
            messages.append(OutgoingMessage(body=envelope_of(fragments), context=carried))
        return messages

    def _send_to_sqs(self, messages: list[OutgoingMessage]) -> tuple[int, list[OutgoingMessage]]:
        try:
            sender = SqsBatchSender(self._sqs_client(), self.config.queue_url, max_attempts=self.config.send_attempts)
            outcome = sender.send(messages)
        except Exception as exc:
            logger.debug("cannot send to SQS: %s", exc)
            self._counters["send_errors"] += 1
            return 0, messages
        self._counters["sqs_requests"] += outcome.requests
        self._counters["send_errors"] += outcome.errors
        self._counters["messages_sent"] += len(outcome.sent)
        if outcome.failed:
            logger.warning("SQS did not accept %d message(s): %s", len(outcome.failed), outcome.last_error)
        return sum(len(m.context) for m in outcome.sent), outcome.failed

    def _fallback(self, items: list[_Item]) -> None:
        if not self.config.fallback:
            self._drop(len(items), "SQS unavailable and the fallback is off")
            return
        aggregator = DatumAggregator()
        for series, value, ts in items:
            _, ns, name, dims, unit, resolution = series
            aggregator.add(ns, name, dims, unit, resolution, ts, (value,))
        try:
            publisher = CloudWatchPublisher(self._cloudwatch_client(), max_attempts=3, base_delay=0.2, max_delay=1.0)
            outcome = publisher.publish(pack_requests(aggregator.datums()))
        except Exception as exc:
            logger.debug("fallback PutMetricData failed: %s", exc)
            self._drop(len(items), f"SQS and CloudWatch unavailable: {exc}")
            return
        self._counters["put_metric_data_calls"] += outcome.calls
        published = sum(int(d.sample_count) for d in outcome.published)
        self._counters["fallback_published"] += published
        lost = len(items) - published
        if lost:
            self._drop(lost, f"SQS and CloudWatch unavailable ({outcome.last_error})")

    def _drop(self, count: int, why: str) -> None:
        self._counters["dropped"] += count
        self._drops_since_log += count
        now = time.monotonic()
        if now - self._last_drop_log >= max(self.config.flush_interval, 10.0):
            logger.error("metricbatch dropped %d metric(s): %s", self._drops_since_log, why)
            self._last_drop_log = now
            self._drops_since_log = 0

    def _sqs_client(self) -> Any:
        if self._sqs is None:
            self._sqs = _make_client("sqs")
        return self._sqs

    def _cloudwatch_client(self) -> Any:
        if self._cloudwatch is None:
            self._cloudwatch = _make_client("cloudwatch")
        return self._cloudwatch


def _make_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


# -- exit hooks: flush at normal exit and on SIGTERM, then let SIGTERM do what it would have done ------------------
_producers: weakref.WeakSet[MetricProducer] = weakref.WeakSet()
_hooks_installed = False
_hooks_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # The sender thread does not survive fork(); the child starts its own on its first metric.
    for producer in list(_producers):
        producer._running = False
        producer._thread = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _flush_all(timeout: float | None = None) -> None:
    for producer in list(_producers):
        try:
            producer.close(timeout)
        except Exception:  # pragma: no cover
            logger.exception("flush at exit failed")


def _register_exit_hooks(producer: MetricProducer, handle_sigterm: bool) -> None:
    global _hooks_installed
    _producers.add(producer)
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_flush_all)
        if handle_sigterm and threading.current_thread() is threading.main_thread():
            _install_sigterm_handler()


def _install_sigterm_handler() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return  # the application chose to ignore SIGTERM; leave it so

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        _flush_all()
        if callable(previous):
            previous(signum, frame)  # the application's own handler decides what happens next
            return
        # Default disposition: restore it and re-deliver, so the process ends exactly as it would have.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)

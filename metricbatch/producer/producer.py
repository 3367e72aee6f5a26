"""The producer: ``send_metric`` validates and hands the metric to its mode's recorder in microseconds.

The pieces: ``config`` (settings and the mode), ``modes`` (the recorder of each mode), ``buffer`` (histograms per
series and bucket, counters, the bound), ``sender`` (the thread and its rounds), ``destinations`` (SQS, then direct
PutMetricData while SQS is down; EMF lines in emf.py), ``immediate`` (memory and off), ``encoding`` (wire format),
``lifecycle`` (exit, SIGTERM, fork, multiprocessing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from metricbatch.env import DEFAULT_NAMESPACE
from metricbatch.producer import lifecycle
from metricbatch.producer.buffered_recorder import BufferedRecorder
from metricbatch.producer.clients import ClientFactory
from metricbatch.producer.config import EMF, ProducerConfig
from metricbatch.producer.emf import check_emf_series
from metricbatch.producer.modes import build_recorder
from metricbatch.producer.series import BufferedSeries, SeriesHandle, record_fanout, validate_series

__all__ = ["MetricProducer", "ProducerConfig"]

_MAX_SERIES_CACHE = 10_000
_SeriesKey = tuple[Any, ...]


class MetricProducer:
    """Validates metrics at the call and delivers them as its mode says, never blocking the caller on the network.

    Args:
        queue_url: the pipeline's SQS queue; default ``METRICBATCH_QUEUE_URL``.
        namespace: default namespace for ``send_metric``; default ``METRICBATCH_NAMESPACE``, else (unset or not a
            valid namespace) ``"metricbatch/default"``, said once in the log when first used and shown in
            ``stats()["namespace_reason"]``. A namespace passed in code is never replaced: a bad one raises.
        mode: ``"sqs"`` (the queue), ``"emf"`` (Embedded Metric Format lines on stdout), ``"memory"`` (kept for
            ``metricbatch.testing.captured()``) or ``"off"`` (validated and discarded); default
            ``METRICBATCH_MODE``, else ``"sqs"`` when a queue URL is set. Without any of them (or without an AWS
            region for sqs) the mode is ``"off"``, one warning says why, and ``stats()["mode_reason"]`` too.
        sqs_client, cloudwatch_client: boto3 clients to use in every process (a forked child shares their
            connections with the parent: prefer ``client_factory``).
        client_factory: makes a client for "sqs" or "cloudwatch", once per process (default: boto3's standard
            settings, the region from AWS_REGION, AWS_DEFAULT_REGION or the profile, bounded timeouts).
        default_dimensions: dimensions on every metric of this producer (a call's own ``dimensions`` win on a
            clash; they count toward the 30-dimension limit); default ``METRICBATCH_DEFAULT_DIMENSIONS``
            (``"Service=cart,Stage=prod"``; a malformed value is one ERROR line and ignored).
        emf_stream: where emf mode writes (default: ``sys.stdout`` at each write).
        sleep, clock, monotonic: injectable for tests (retry backoff; wall clock for timestamps; drop-log pacing).
        **options: any ``ProducerConfig`` field, e.g. ``flush_interval=0.5`` or ``max_buffered=10_000``;
            ``queue_urls=[...]`` (default ``METRICBATCH_QUEUE_URLS``) routes each series to one of a sharded
            deployment's queues, and ``flush_interval=60`` (default ``METRICBATCH_ROUND_SECONDS``) makes rounds
            minute-aligned (README, "Deploy: big fleets").

    Raises:
        ConfigurationError: an explicit argument is wrong (``mode=`` not a mode, ``max_buffered`` below 1,
            ``default_dimensions`` that CloudWatch would reject).
    """

    def __init__(
        self,
        queue_url: str | None = None,
        *,
        namespace: str | None = None,
        mode: str | None = None,
        sqs_client: Any = None,
        cloudwatch_client: Any = None,
        client_factory: ClientFactory | None = None,
        default_dimensions: Mapping[str, str] | None = None,
        emf_stream: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        config = ProducerConfig.from_env(
            queue_url=queue_url, namespace=namespace, mode=mode, default_dimensions=default_dimensions, **options
        )
        self.config, self._recorder = build_recorder(
            config,
            owner=self,
            clients={"sqs": sqs_client, "cloudwatch": cloudwatch_client},
            client_factory=client_factory,
            emf_stream=emf_stream,
            sleep=sleep,
            clock=clock,
            monotonic=monotonic,
        )
        self._namespace = self.config.namespace
        self._defaults = dict(self.config.default_dimensions)
        self._clock = clock
        self._series: dict[_SeriesKey, BufferedSeries] = {}
        self._record = self._recorder.record
        self._wake = self._recorder.wake
        lifecycle.watch_forks(self)
        if self._namespace is None:  # settings made without from_env: the default namespace all the same
            self._namespace = DEFAULT_NAMESPACE
        self._namespace_note = self.config.namespace_reason  # said once, when the default namespace is first used

    @property
    def _rounds(self) -> BufferedRecorder | None:
        # The recorder whose sender rounds collect counted sources (sqs and emf modes); None where metrics are
        # recorded at once (memory, off). For the AWS SDK call tally (instrument.py), not for users.
        return self._recorder if isinstance(self._recorder, BufferedRecorder) else None

    @property
    def mode(self) -> str:
        """Where this producer's metrics go: ``"sqs"``, ``"emf"``, ``"memory"`` or ``"off"``."""
        return self.config.mode

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
        rollups: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Validate one metric and hand it on; raises InvalidMetricError for anything CloudWatch would reject.

        ``timestamp``: a ``datetime`` (a naive one is read as UTC, unlike ``datetime.timestamp()``, which reads
        it as local time) or epoch seconds; default: now. Validation is the same in every mode.
        ``rollups``: also record the sample under each of these subsets of the dimension keys (``[]``: no
        dimensions), e.g. ``[["Service"], []]``; a key not among the metric's dimensions (defaults included) is
        ``InvalidMetricError`` (rule ``rollup.key``). Each set is a series of its own in CloudWatch.
        """
        ns = self._namespace if namespace is None else namespace
        try:
            # The resolution's type is part of the key: True == 1 must not reuse a validated resolution-1 series.
            key: _SeriesKey | None = (
                ns, name, unit, storage_resolution, storage_resolution.__class__,
                tuple(dimensions.items()) if dimensions else (),
            )  # fmt: skip
            if rollups is not None:
                key = (*key, tuple(tuple(keys) for keys in rollups))  # type: ignore[misc]
            series = self._series.get(key)  # type: ignore[arg-type]
        except (TypeError, AttributeError):  # unhashable or not a mapping: validation below says why
            key, series = None, None
        if series is None:
            series = self._new_series(key, ns, name, unit, storage_resolution, dimensions, rollups)
        if series.fanout:
            if record_fanout(self._record, self._clock, series, value, timestamp):
                self._wake()
        elif self._record(series, value, timestamp):
            self._wake()

    def series(
        self,
        name: str,
        *,
        unit: str = "None",
        namespace: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        storage_resolution: int = 60,
        rollups: Sequence[Sequence[str]] | None = None,
    ) -> SeriesHandle:
        """A handle for one series, validated now; its ``send(value, timestamp=None)`` checks only the value.

        ``rollups`` as in ``send_metric``: each sent value is also recorded under those subsets of the keys.
        """
        ns = self._namespace if namespace is None else namespace
        series = self._new_series(None, ns, name, unit, storage_resolution, dimensions, rollups)
        return SeriesHandle(series, self._record, self._wake, self._clock)

    def _new_series(
        self,
        key: _SeriesKey | None,
        namespace: str | None,
        name: str,
        unit: str,
        resolution: int,
        dimensions: Mapping[str, str] | None,
        rollups: object = None,
    ) -> BufferedSeries:
        # Defaults were validated once at construction; the merged set is validated per new series (then cached).
        # Anything but a mapping is left to validation, which says why it is wrong.
        if self._defaults and (dimensions is None or isinstance(dimensions, Mapping)):
            dimensions = {**self._defaults, **(dimensions or {})}
        try:
            series = validate_series(
                namespace, name, unit, resolution, dimensions, rollups, dimension_sets=self.config.mode == EMF
            )
            if self.config.mode == EMF:
                check_emf_series(series.key)
        except ValueError:
            self._recorder.count({"invalid": 1})
            raise
        if self._namespace_note and namespace == self._namespace:
            from metricbatch.producer.modes import announce_once

            note, self._namespace_note = self._namespace_note, ""
            announce_once(note, logging.WARNING if note.startswith("no ") else logging.ERROR)
        if key is not None:
            if len(self._series) >= _MAX_SERIES_CACHE:
                self._series.clear()
            self._series[key] = series
        return series

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything sent so far is delivered (or dropped); True only when all of it was delivered.

        False if ``timeout`` (seconds) ran out first, if any metric was dropped since the previous ``flush()``
        (buffer full, or SQS and CloudWatch both unavailable: see ``stats()["dropped"]`` and the log), if a wrong
        setting holds metrics back (``stats()["config_error"]``), or if metrics were discarded because the mode was
        chosen for a missing setting (``stats()["mode_reason"]``). In memory, off and emf modes it returns at once
        or after writing the lines.
        """
        return self._recorder.flush(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters (buffered, sent, dropped, fallback_published, send_errors, invalid, accepted, emf_published,
        captured, discarded, ...) plus ``mode``, ``mode_reason`` (why the mode was chosen for you, else ""),
        ``config_error`` (a wrong setting holding metrics back right now, else ""), ``namespace`` (the default
        namespace) and ``namespace_reason`` (why it is ``"metricbatch/default"``, else "")."""
        stats: dict[str, Any] = dict(self._recorder.stats())
        stats.update(mode=self.config.mode, mode_reason=self.config.mode_reason, config_error=self._recorder.blocked)
        stats.update(namespace=self._namespace, namespace_reason=self.config.namespace_reason)
        return stats

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the sender thread; logs the total dropped, if any. Idempotent."""
        self._recorder.close(timeout)

    # -- lifecycle (called by ``lifecycle``) ------------------------------------------------------------------------
    def end_for_signal(self, timeout: float | None = None) -> None:
        """The process is about to die of a signal: deliver all it accepted, then accept nothing more."""
        self._recorder.end_for_signal(timeout)

    def resume_after_signal(self) -> None:
        """The process survived the signal: accept metrics again."""
        self._recorder.resume_after_signal()

    def prepare_fork(self) -> None:
        """Before fork(): a client being made (imports!) finishes first."""
        self._recorder.prepare_fork()

    def parent_after_fork(self) -> None:
        """After fork() in the parent."""
        self._recorder.parent_after_fork()

    def reset_after_fork(self) -> None:
        """In a forked child: the inherited buffer and counters stay the parent's."""
        self._recorder.reset_after_fork()

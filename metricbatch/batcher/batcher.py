"""The batcher's logic: one SQS batch of wire messages in, the fewest valid PutMetricData calls out.

Bad input never costs good data: unparseable bodies, invalid datums and foreign namespaces are set aside in the
DLQ with their reason; every valid datum is published exactly once. Datums CloudWatch cannot take right now are
re-queued as a new message of just those datums (with an attempt count), so nothing is published twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from metricbatch.aws.sqs import OutgoingMessage, SqsBatchSender
from metricbatch.cloudwatch.aggregation import Datum, DatumAggregator
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.publisher import CloudWatchPublisher
from metricbatch.exceptions import InvalidMetricError, WireFormatError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.validation import Dimensions, check_timestamp, check_value
from metricbatch.wire import ATTR_REASON, ATTR_RULE, ATTR_SOURCE, datum_to_wire, parse_envelope, parse_metric

logger = logging.getLogger(__name__)

_MAX_REASON_CHARS = 1000
# A re-queued message carries "attempt"; past this many it goes to the DLQ instead of cycling through the queue.
MAX_REQUEUE_ATTEMPTS: Final = 5


@dataclass(frozen=True, kw_only=True)
class BatcherConfig:
    """The handler's settings, read once from the environment (explicit arguments win)."""

    dlq_url: str | None = None
    queue_url: str | None = None  # where unsent datums are re-queued; default: the record's source queue
    allowed_namespaces: tuple[str, ...] = ()
    max_requeue_attempts: int = MAX_REQUEUE_ATTEMPTS
    reserve_seconds: float = 2.0  # time kept back from the deadline for re-queueing and the response

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BatcherConfig:
        env = os.environ if environ is None else environ
        allowed = tuple(p.strip() for p in env.get("METRICBATCH_ALLOWED_NAMESPACES", "").split(",") if p.strip())
        values: dict[str, Any] = {
            "dlq_url": env.get("METRICBATCH_DLQ_URL") or None,
            "queue_url": env.get("METRICBATCH_QUEUE_URL") or None,
            "allowed_namespaces": allowed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(slots=True)
class BatchReport:
    """What one invocation did; the handler turns it into EMF self-metrics."""

    records: int = 0
    metrics_received: int = 0
    metrics_rejected: int = 0
    metrics_published: int = 0
    datums_published: int = 0
    put_metric_data_calls: int = 0
    put_metric_data_retries: int = 0
    messages_requeued: int = 0
    duplicate_messages: int = 0  # deliveries of a message already handled (SQS is at-least-once)
    messages_set_aside: int = 0
    failed_records: int = 0

    @property
    def api_calls_saved(self) -> int:
        return self.metrics_received - self.put_metric_data_calls


# A validated metric: (namespace, name, dimensions, unit, resolution), timestamp, values, counts (None: all 1).
_Series = tuple[str, str, Dimensions, str, int]
_Metric = tuple[_Series, float, list[float], list[float] | None]
_MAX_SERIES_CACHE = 10_000
_FAST_KEYS = frozenset({"namespace", "name", "value", "unit", "dimensions", "timestamp", "resolution"})


def _series_key(raw: Any) -> tuple[Any, ...] | None:
    """The wire form of a metric's series, for the batch's cache of validated series; None when not cacheable
    (the key may still be unhashable: the cache lookup tells, without hashing twice on the hot path).

    Only exact types make a key (a str is never equal to a non-str, and resolution must be an int, not a bool), so a
    cached series is returned only for input that validates to exactly that series.
    """
    if raw.__class__ is not dict or not raw.keys() <= _FAST_KEYS:
        return None
    dims = raw.get("dimensions")
    resolution = raw.get("resolution", 60)
    if resolution.__class__ is not int:
        return None
    if dims is not None:
        if dims.__class__ is not dict:
            return None
        dims = tuple(dims.items())
    return (raw.get("namespace"), raw.get("name"), raw.get("unit", "None"), resolution, dims)


@dataclass(slots=True)
class _Record:
    index: int
    message_id: str
    attempt: int = 0
    metrics: list[_Metric] = field(default_factory=list)
    set_aside: list[OutgoingMessage] = field(default_factory=list)
    source_arn: str | None = None
    duplicate_of: int | None = None  # index of the record in this batch that carries the same message


class RecentMessageIds:
    """Message ids this sandbox settled lately, bounded; SQS delivers at least once, often to the same sandbox."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class MetricBatcher:
    """Collects the records of one batch, then publishes, sets aside and re-queues in ``finish()``."""

    def __init__(
        self,
        config: BatcherConfig,
        *,
        cloudwatch: Any,
        sqs: Any,
        time_left: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        queue_url_cache: dict[str, str] | None = None,
        settled_ids: RecentMessageIds | None = None,
    ) -> None:
        self._config = config
        self._settled = settled_ids
        self._ids_in_batch: dict[str, int] = {}
        self._cloudwatch = cloudwatch
        self._sqs = sqs
        self._time_left = time_left
        self._clock = clock
        self._sleep = sleep
        self._queue_urls = queue_url_cache if queue_url_cache is not None else {}
        self._records: list[_Record] = []
        self._series_cache: dict[tuple[Any, ...], _Series] = {}
        self.report = BatchReport()

    # -- collecting ---------------------------------------------------------------------------------------------
    def add_record(
        self,
        message_id: str,
        body: str,
        *,
        sent_timestamp_ms: str | int | None = None,
        event_source_arn: str | None = None,
    ) -> None:
        """Parse and validate one SQS record; invalid parts are queued for the DLQ, nothing is sent yet."""
        now = self._clock()
        record = _Record(index=len(self._records), message_id=message_id, source_arn=event_source_arn)
        self._records.append(record)
        self.report.records += 1
        # At-least-once delivery: a message seen earlier in this batch, or settled by this sandbox before, is not
        # published again. A copy in this batch shares the fate of the first (deleting either deletes both).
        if message_id in self._ids_in_batch:
            record.duplicate_of = self._ids_in_batch[message_id]
            self.report.duplicate_messages += 1
            return
        self._ids_in_batch[message_id] = record.index
        if self._settled is not None and message_id in self._settled:
            logger.info("message %s was settled before; not publishing it again", message_id)
            self.report.duplicate_messages += 1
            return
        try:
            envelope = parse_envelope(body)
        except WireFormatError as exc:
            record.set_aside.append(self._set_aside_message(body, exc.rule, exc.detail, record))
            return
        record.attempt = envelope.get("attempt", 0)
        default_ts = int(sent_timestamp_ms) / 1000.0 if sent_timestamp_ms else now
        allowed = self._config.allowed_namespaces
        rejected: list[Any] = []
        errors: list[dict[str, Any]] = []
        cache = self._series_cache
        append = record.metrics.append
        for position, raw in enumerate(envelope["metrics"]):
            try:
                # Fast path: a single float value, float timestamp and a series this batch has validated already.
                key = _series_key(raw)
                try:
                    series = cache.get(key) if key is not None else None
                except TypeError:  # an unhashable part (e.g. a list as unit): not cacheable, validation says why
                    key, series = None, None
                if series is not None and "value" in raw:
                    # Fast path: a series this batch has validated already; only timestamp and value are checked.
                    ts = check_timestamp(raw.get("timestamp", default_ts), now)
                    metric: _Metric = (series, ts, [check_value(raw["value"])], None)
                else:
                    parsed = parse_metric(raw, default_ts, now)
                    series = (parsed.namespace, parsed.name, parsed.dimensions, parsed.unit, parsed.resolution)
                    if key is not None:
                        if len(cache) >= _MAX_SERIES_CACHE:
                            cache.clear()
                        cache[key] = series
                    metric = (series, parsed.timestamp, parsed.values, parsed.counts)
                if allowed and not series[0].startswith(allowed):
                    raise InvalidMetricError(
                        "namespace.not_allowed",
                        f"namespace {series[0]!r} is not in METRICBATCH_ALLOWED_NAMESPACES {list(allowed)}",
                    )
            except InvalidMetricError as exc:
                rejected.append(raw)
                errors.append({"index": position, "rule": exc.rule, "reason": exc.detail})
                continue
            append(metric)
        if record.attempt == 0:
            self.report.metrics_received += len(envelope["metrics"])
        if rejected:
            self.report.metrics_rejected += len(rejected)
            # Several DLQ messages if need be: the invalid metrics plus their reasons can outgrow the SQS limit.
            for chunk, chunk_errors in _set_aside_chunks(rejected, errors):
                body_out = json.dumps(
                    {"v": 1, "metrics": chunk, "errors": chunk_errors, "source_message_id": message_id},
                    allow_nan=True,
                )
                first = chunk_errors[0]
                record.set_aside.append(
                    self._set_aside_message(
                        body_out, first["rule"], f"{len(chunk)} invalid metric(s); first: {first['reason']}", record
                    )
                )

    def _set_aside_message(self, body: str, rule: str, reason: str, record: _Record) -> OutgoingMessage:
        logger.info("setting aside part of message %s: %s", record.message_id, rule)
        return OutgoingMessage(
            body=body,
            attributes={ATTR_RULE: rule, ATTR_REASON: reason[:_MAX_REASON_CHARS], ATTR_SOURCE: record.message_id},
            context=record.index,
        )

    # -- finishing ----------------------------------------------------------------------------------------------
    def finish(self, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Set aside, publish and re-queue; return the message ids to report as batch item failures.

        Records in ``exclude`` (already failed by the caller) contribute nothing and are reported as failed.
        """
        failed: set[int] = {r.index for r in self._records if r.message_id in exclude}

        # 1. Set-asides first: a record whose bad part cannot reach the DLQ fails whole, before any of it is sent.
        set_aside = [m for r in self._records if r.index not in failed for m in r.set_aside]
        if set_aside:
            outcome = self._dlq_sender().send(set_aside) if self._config.dlq_url else None
            if outcome is None:
                logger.error(
                    "METRICBATCH_DLQ_URL is not set; %d set-aside message(s) fail their records", len(set_aside)
                )
                failed.update(m.context for m in set_aside)
            else:
                self.report.messages_set_aside += len(outcome.sent)
                failed.update(m.context for m in outcome.failed)

        # 2. Merge every valid datum of the healthy records.
        aggregator = DatumAggregator()
        for record in self._records:
            if record.index in failed:
                continue
            add = aggregator.add_series
            for series, timestamp, values, counts in record.metrics:
                add(series, timestamp, values, counts, record.index)
        datums = aggregator.datums()

        # 3. Publish.
        publisher = CloudWatchPublisher(
            self._cloudwatch, time_left=self._time_left, reserve_seconds=self._config.reserve_seconds, sleep=self._sleep
        )
        outcome_cw = publisher.publish(pack_requests(datums))
        self.report.put_metric_data_calls = outcome_cw.calls
        self.report.put_metric_data_retries = outcome_cw.retries
        self.report.datums_published = len(outcome_cw.published)
        self.report.metrics_published = sum(d.entries for d in outcome_cw.published)
        published_sources: set[int] = set()
        for datum in outcome_cw.published:
            published_sources.update(datum.sources)

        # 4. Datums CloudWatch refused individually go to the DLQ; unsent ones are re-queued.
        leftovers: list[OutgoingMessage] = []
        if outcome_cw.rejected:
            self.report.metrics_rejected += sum(d.entries for d, _ in outcome_cw.rejected)
            for datum, reason in outcome_cw.rejected:
                leftovers.append(
                    _datum_message(datum, attempt=None, rule="cloudwatch.rejected", reason=reason, to_dlq=True)
                )
        requeue: list[OutgoingMessage] = []
        if outcome_cw.unsent:
            logger.warning(
                "%d datum(s) could not be published (%s); re-queueing", len(outcome_cw.unsent), outcome_cw.last_error
            )
            for datum in outcome_cw.unsent:
                attempt = max((self._records[i].attempt for i in datum.sources), default=0) + 1
                if attempt > self._config.max_requeue_attempts:
                    reason = f"unpublished after {attempt - 1} re-queues; last error: {outcome_cw.last_error}"
                    leftovers.append(_datum_message(datum, attempt, "cloudwatch.unavailable", reason, to_dlq=True))
                else:
                    requeue.append(_datum_message(datum, attempt, "", "", to_dlq=False))
        requeue = _coalesce(requeue)
        if leftovers:
            if self._config.dlq_url:
                dlq_outcome = self._dlq_sender().send(leftovers)
                self.report.messages_set_aside += len(dlq_outcome.sent)
                undelivered = dlq_outcome.failed
            else:
                undelivered = leftovers
            for message in undelivered:
                failed.update(message.context)
        if requeue:
            queue_url = self._requeue_url()
            if queue_url is None:
                undelivered = requeue
            else:
                requeue_outcome = self._sender(queue_url).send(requeue)
                self.report.messages_requeued += len(requeue_outcome.sent)
                undelivered = requeue_outcome.failed
            for message in undelivered:
                failed.update(message.context)

        partially = failed & published_sources
        if partially:
            logger.error(
                "%d record(s) had datums published but others could not be re-queued; they will be redelivered "
                "and their published datums may be counted twice",
                len(partially),
            )
        failed.update(r.index for r in self._records if r.duplicate_of is not None and r.duplicate_of in failed)
        if self._settled is not None:
            for record in self._records:
                if record.index not in failed:
                    self._settled.add(record.message_id)
        self.report.failed_records = len(failed)
        return [self._records[i].message_id for i in sorted(failed)]

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _sender(self, queue_url: str) -> SqsBatchSender:
        return SqsBatchSender(self._sqs, queue_url, sleep=self._sleep, time_left=self._time_left)

    def _dlq_sender(self) -> SqsBatchSender:
        assert self._config.dlq_url is not None
        return self._sender(self._config.dlq_url)

    def _requeue_url(self) -> str | None:
        if self._config.queue_url:
            return self._config.queue_url
        arn = next((r.source_arn for r in self._records if r.source_arn), None)
        if arn is None:
            logger.error("no METRICBATCH_QUEUE_URL and no eventSourceARN: cannot re-queue")
            return None
        if arn not in self._queue_urls:
            parts = arn.split(":")
            try:
                response = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            except Exception:
                logger.exception("cannot resolve the queue URL of %s", arn)
                return None
            self._queue_urls[arn] = response["QueueUrl"]
        return self._queue_urls[arn]


def _set_aside_chunks(rejected: list[Any], errors: list[dict[str, Any]]) -> list[tuple[list[Any], list[Any]]]:
    """Invalid metrics and their errors in groups whose DLQ body stays under the SQS message limit."""
    # Headroom twice over: once for the envelope, once for the attributes (a reason of up to 1,000 characters).
    limit = MAX_SQS_MESSAGE_BYTES - 2 * SQS_MESSAGE_HEADROOM_BYTES
    chunks: list[tuple[list[Any], list[Any]]] = []
    metrics: list[Any] = []
    chunk_errors: list[Any] = []
    size = 0
    for metric, error in zip(rejected, errors, strict=True):
        item_size = len(json.dumps(metric, allow_nan=True).encode()) + len(json.dumps(error).encode()) + 2
        if metrics and size + item_size > limit:
            chunks.append((metrics, chunk_errors))
            metrics, chunk_errors, size = [], [], 0
        metrics.append(metric)
        chunk_errors.append(error)
        size += item_size
    if metrics:
        chunks.append((metrics, chunk_errors))
    return chunks


def _datum_message(datum: Datum, attempt: int | None, rule: str, reason: str, *, to_dlq: bool) -> OutgoingMessage:
    wire = datum_to_wire(
        datum.namespace,
        datum.name,
        datum.dimensions,
        datum.unit,
        datum.resolution,
        datum.timestamp,
        datum.values,
        datum.counts,
    )
    envelope: dict[str, Any] = {"v": 1, "metrics": [wire]}
    if attempt:
        envelope["attempt"] = attempt
    attributes = {ATTR_RULE: rule, ATTR_REASON: reason[:_MAX_REASON_CHARS]} if to_dlq else {}
    return OutgoingMessage(body=json.dumps(envelope), attributes=attributes, context=set(datum.sources))


def _coalesce(messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
    """Merge single-datum re-queue messages of the same attempt into as few messages as the size limit allows."""
    by_attempt: dict[int, list[OutgoingMessage]] = {}
    for message in messages:
        by_attempt.setdefault(json.loads(message.body).get("attempt", 0), []).append(message)
    limit = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES
    merged: list[OutgoingMessage] = []
    for attempt, group in by_attempt.items():
        metrics: list[Any] = []
        sources: set[int] = set()
        size = 0
        for message in group:
            metric = json.loads(message.body)["metrics"][0]
            metric_size = len(json.dumps(metric)) + 2
            if metrics and size + metric_size > limit:
                merged.append(_requeue_message(metrics, attempt, sources))
                metrics, sources, size = [], set(), 0
            metrics.append(metric)
            sources.update(message.context)
            size += metric_size
        if metrics:
            merged.append(_requeue_message(metrics, attempt, sources))
    return merged


def _requeue_message(metrics: list[Any], attempt: int, sources: set[int]) -> OutgoingMessage:
    return OutgoingMessage(body=json.dumps({"v": 1, "attempt": attempt, "metrics": metrics}), context=sources)

"""Collecting one SQS record: parse the body, validate every metric, keep the valid ones and set the rest aside.

Nothing is sent here. Validation is the full rule set (``metricbatch.validation``); what is cached per batch is only
the series a body spelled exactly so before, so a repeat costs a timestamp and a value check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

from metricbatch.aws.chunking import chunked
from metricbatch.aws.sqs import OutgoingMessage
from metricbatch.exceptions import InvalidMetricError, WireFormatError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.validation import Series, check_timestamp, check_value, check_values, describe
from metricbatch.wire import (
    ATTR_REASON,
    ATTR_RULE,
    ATTR_SOURCE,
    SetAside,
    parse_envelope,
    parse_metric,
    set_aside_body,
)

logger = logging.getLogger(__name__)

MAX_REASON_CHARS: Final = 1000  # of the reason attribute on a set-aside message
_MAX_SERIES_CACHE: Final = 10_000
# A set-aside body plus its attributes (a reason of up to 1,000 characters) must stay under the SQS message limit.
_SET_ASIDE_BYTES: Final = MAX_SQS_MESSAGE_BYTES - 2 * SQS_MESSAGE_HEADROOM_BYTES

# A valid metric: its series, timestamp, values and counts (None: one per value).
ValidMetric = tuple[Series, float, list[float], list[float] | None]
# Marks an absent field in a series key, apart from a field present as null.
_ABSENT: Final = object()


@dataclass(slots=True)
class Record:
    """One SQS record of the batch and what became of it."""

    index: int
    message_id: str
    source_arn: str | None = None
    attempt: int = 0  # how often its data was re-queued before ("attempt" in the envelope)
    metrics: list[ValidMetric] = field(default_factory=list)
    samples: float = 0.0  # samples in ``metrics``
    set_aside: list[OutgoingMessage] = field(default_factory=list)
    duplicate_of: int | None = None  # the record in this batch that carries the same message


def set_aside_message(body: str, rule: str, reason: str, record: Record) -> OutgoingMessage:
    """A DLQ message for (part of) a record, with the rule, the reason and the source message id as attributes."""
    logger.info("setting aside part of message %s: %s", record.message_id, rule)
    return OutgoingMessage(
        body=body,
        attributes={ATTR_RULE: rule, ATTR_REASON: reason[:MAX_REASON_CHARS], ATTR_SOURCE: record.message_id},
        context=frozenset({record.index}),
    )


class RecordCollector:
    """Validates the records of one batch; remembers the series it validated (bounded) for the batch's repeats."""

    def __init__(self, allowed_namespaces: tuple[str, ...] = (), clock: Callable[[], float] = time.time) -> None:
        self._allowed = allowed_namespaces
        self._clock = clock
        # The series fields exactly as a body spelled them -> (the validated series, how many fields spelled it).
        self._series: dict[tuple[Any, ...], tuple[Series, int]] = {}

    def collect(self, record: Record, body: str, sent_timestamp_ms: str | int | None = None) -> float:
        """Validate ``body`` into ``record``: valid metrics into ``record.metrics``, the rest into
        ``record.set_aside``. Returns the samples the body carried (valid and invalid)."""
        try:
            envelope = parse_envelope(body)
        except WireFormatError as exc:
            record.set_aside.append(set_aside_message(body, exc.rule, exc.detail, record))
            return 0.0  # its samples cannot be counted; MessagesSetAside shows it
        record.attempt = envelope.get("attempt", 0)
        now = self._clock()
        default_ts = int(sent_timestamp_ms) / 1000.0 if sent_timestamp_ms else now
        rejected: list[tuple[int, Any, InvalidMetricError]] = []
        valid, samples = self._validate_all(envelope["metrics"], default_ts, now, rejected)
        record.metrics, record.samples = valid, samples
        rejected_samples = 0.0
        if rejected:
            rejected_samples = sum(samples_in(raw) for _, raw, _ in rejected)
            record.set_aside.extend(_set_aside_messages(record, rejected))
        return samples + rejected_samples

    def _validate_all(
        self, metrics: list[Any], default_ts: float, now: float, rejected: list[tuple[int, Any, InvalidMetricError]]
    ) -> tuple[list[ValidMetric], float]:
        # The hot loop of the batcher: everything it needs is bound locally, the common case is inline.
        cache_get = self._series.get
        valid: list[ValidMetric] = []
        append = valid.append
        samples = 0.0
        for position, raw in enumerate(metrics):
            try:
                if raw.__class__ is dict:
                    get = raw.get
                    dims = get("dimensions", _ABSENT)
                    resolution = get("resolution", _ABSENT)
                    # resolution True == 1 in a key: only an int (or absent) may match a cached series
                    if resolution.__class__ is int or resolution is _ABSENT:
                        key = (get("namespace"), get("name"), get("unit", _ABSENT), resolution,
                               tuple(dims.items()) if dims.__class__ is dict else dims)  # fmt: skip
                        try:
                            cached = cache_get(key)
                        except TypeError:  # an unhashable part: validation below says why
                            cached = None
                        if cached is not None:
                            # A series validated before: only timestamp and value(s) are checked, and the body must
                            # hold nothing else (a missing, unknown or doubled field goes to the full rule set).
                            series, fields = cached
                            ts = get("timestamp", _ABSENT)
                            value = get("value", _ABSENT)
                            if value is not _ABSENT and len(raw) == fields + 1 + (ts is not _ABSENT):
                                ts = check_timestamp(default_ts if ts is _ABSENT else ts, now)
                                append((series, ts, [check_value(value)], None))
                                samples += 1.0
                                continue
                            metric = _values_form(raw, series, fields, default_ts, now)
                            if metric is not None:
                                append(metric)
                                samples += sum(metric[3]) if metric[3] is not None else len(metric[2])
                                continue
                metric = self._validate(raw, default_ts, now)
            except InvalidMetricError as exc:
                rejected.append((position, raw, exc))
                continue
            append(metric)
            counts = metric[3]
            samples += len(metric[2]) if counts is None else sum(counts)
        return valid, samples

    def _validate(self, raw: Any, default_ts: float, now: float) -> ValidMetric:
        """The full rule set; a valid series is remembered under the fields that spelled it."""
        parsed = parse_metric(raw, default_ts, now)
        series = parsed.series
        if self._allowed and not series.namespace.startswith(self._allowed):
            allowed = list(self._allowed)
            raise InvalidMetricError(
                "namespace.not_allowed",
                f"namespace {describe(series.namespace)} is not in METRICBATCH_ALLOWED_NAMESPACES {allowed}",
            )
        dims = raw.get("dimensions", _ABSENT)
        resolution = raw.get("resolution", _ABSENT)
        if resolution.__class__ is int or resolution is _ABSENT:
            key = (raw["namespace"], raw["name"], raw.get("unit", _ABSENT), resolution,
                   tuple(dims.items()) if dims.__class__ is dict else dims)  # fmt: skip
            fields = 2 + sum(part is not _ABSENT for part in key[2:])
            if len(self._series) >= _MAX_SERIES_CACHE:
                self._series.clear()
            self._series[key] = (series, fields)
        return series, parsed.timestamp, parsed.values, parsed.counts


def _values_form(raw: dict[str, Any], series: Series, fields: int, default_ts: float, now: float) -> ValidMetric | None:
    """A ``values``/``counts`` metric of a series validated before; None when the body holds anything else."""
    get = raw.get
    ts, values, counts = get("timestamp", _ABSENT), get("values", _ABSENT), get("counts", _ABSENT)
    if values is _ABSENT or len(raw) != fields + 1 + (counts is not _ABSENT) + (ts is not _ABSENT):
        return None
    timestamp = check_timestamp(default_ts if ts is _ABSENT else ts, now)
    checked_values, checked_counts = check_values(values, None if counts is _ABSENT else counts)
    return series, timestamp, checked_values, checked_counts


def samples_in(raw: Any) -> float:
    """How many samples an invalid wire metric stood for, as well as can be told: the sum of its counts if they are
    usable numbers, else the number of its values, else 1."""
    if not isinstance(raw, dict):
        return 1.0
    values, counts = raw.get("values"), raw.get("counts")
    if isinstance(counts, list) and all(isinstance(c, int | float) and not isinstance(c, bool) for c in counts):
        total = float(sum(counts))
        if 0 < total < float("inf"):
            return total
    if isinstance(values, list) and values:
        return float(len(values))
    return 1.0


def _set_aside_messages(record: Record, rejected: list[tuple[int, Any, InvalidMetricError]]) -> list[OutgoingMessage]:
    # Several DLQ messages if need be: the invalid metrics plus their reasons can outgrow the SQS message limit.
    sized = []
    for position, raw, exc in rejected:
        entry = SetAside(raw, position, exc.rule, exc.detail)
        # Sized with a whole envelope each: an overestimate that keeps every body under the limit.
        sized.append((entry, len(set_aside_body([entry], record.message_id))))
    messages = []
    for run in chunked(sized, itemgetter(1), max_bytes=_SET_ASIDE_BYTES):
        entries = [entry for entry, _ in run]
        reason = f"{len(entries)} invalid metric(s); first: {entries[0].reason}"
        body = set_aside_body(entries, record.message_id)
        messages.append(set_aside_message(body, entries[0].rule, reason, record))
    return messages

"""Wire format v1: one SQS message body holding many metrics (see README, "Wire format").

    {"v": 1, "metrics": [{"namespace": "...", "name": "...", "value": 1.5, "unit": "Milliseconds",
                          "dimensions": {"K": "V"}, "timestamp": 1795694400.25, "resolution": 60}, ...]}

A metric carries ``value`` or ``values`` (+ optional ``counts``); ``unit`` defaults to "None", ``resolution`` to 60
and ``timestamp`` to the message's SentTimestamp. Envelope extension: ``"attempt": n`` on re-queued messages.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final, NotRequired, TypedDict

from metricbatch.exceptions import InvalidMetricError, WireFormatError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES
from metricbatch.validation import (
    Dimensions,
    Series,
    check_series,
    check_timestamp,
    check_value,
    check_values,
    describe,
)

WIRE_VERSION: Final = 1
# Message attributes on everything the batcher sets aside in the DLQ.
ATTR_RULE: Final = "metricbatch.rule"
ATTR_REASON: Final = "metricbatch.reason"
ATTR_SOURCE: Final = "metricbatch.source_message_id"


class WireMetric(TypedDict):
    namespace: str
    name: str
    value: NotRequired[float]
    values: NotRequired[list[float]]
    counts: NotRequired[list[float]]
    unit: NotRequired[str]
    dimensions: NotRequired[dict[str, str]]
    timestamp: NotRequired[float | str]
    resolution: NotRequired[int]


class WireEnvelope(TypedDict):
    v: int
    metrics: list[WireMetric]
    attempt: NotRequired[int]


_METRIC_KEYS = frozenset(
    {"namespace", "name", "value", "values", "counts", "unit", "dimensions", "timestamp", "resolution"}
)


@dataclass(frozen=True, slots=True)
class ParsedMetric:
    """A wire metric that passed every CloudWatch rule."""

    series: Series
    timestamp: float
    values: list[float]
    counts: list[float] | None  # None: one count per value


def parse_envelope(body: str | bytes) -> WireEnvelope:
    """Parse a message body into an envelope, checking size before any parsing work.

    Raises:
        WireFormatError: the body is too large, not JSON, too deeply nested, or not a v1 envelope.
    """
    # surrogatepass: a lone surrogate (possible in a str decoded from JSON) must be counted, not raise here.
    size = len(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
    if size > MAX_SQS_MESSAGE_BYTES:
        raise WireFormatError(
            "body.size", f"body is {size} bytes, more than the {MAX_SQS_MESSAGE_BYTES}-byte SQS limit"
        )
    try:
        data = json.loads(body)
    except RecursionError:
        raise WireFormatError("body.nesting", "body is nested too deeply to be a metrics message") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError("body.json", f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireFormatError("envelope.type", f"body must be a JSON object, got {type(data).__name__}")
    version = data.get("v")
    if version != WIRE_VERSION or isinstance(version, bool):
        raise WireFormatError(
            "envelope.version", f"unknown wire format version v={describe(version)}; expected {WIRE_VERSION}"
        )
    metrics = data.get("metrics")
    if not isinstance(metrics, list):
        raise WireFormatError("envelope.metrics", "envelope must have a 'metrics' list")
    attempt = data.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise WireFormatError("envelope.attempt", f"'attempt' must be a non-negative integer, got {describe(attempt)}")
    return data  # type: ignore[return-value]


def parse_metric(raw: object, default_timestamp: float, now: float) -> ParsedMetric:
    """Validate one wire metric against CloudWatch's rules.

    Raises:
        InvalidMetricError: naming the broken rule.
    """
    if not isinstance(raw, dict):
        raise InvalidMetricError("metric.type", f"metric must be a JSON object, got {type(raw).__name__}")
    unknown = raw.keys() - _METRIC_KEYS
    if unknown:
        raise InvalidMetricError("metric.fields", f"unknown metric fields {sorted(unknown)[:5]}")
    series = check_series(
        raw.get("namespace"), raw.get("name"), raw.get("dimensions"), raw.get("unit", "None"), raw.get("resolution", 60)
    )
    timestamp = check_timestamp(raw.get("timestamp", default_timestamp), now)
    has_value, has_values = "value" in raw, "values" in raw
    if has_value == has_values:
        raise InvalidMetricError("value.missing", "a metric needs exactly one of 'value' or 'values'")
    if has_value:
        if "counts" in raw:
            raise InvalidMetricError("counts.without_values", "'counts' goes with 'values', not 'value'")
        return ParsedMetric(series, timestamp, [check_value(raw["value"])], None)
    values, counts = check_values(raw["values"], raw.get("counts"))
    return ParsedMetric(series, timestamp, values, counts)


def metric_head(namespace: str, name: str, dimensions: Dimensions, unit: str, resolution: int) -> str:
    """The constant start of a metric's JSON object (no closing brace): producers cache it per series."""
    parts = [f'{{"namespace":{json.dumps(namespace)},"name":{json.dumps(name)}']
    if unit != "None":
        parts.append(f',"unit":{json.dumps(unit)}')
    if dimensions:
        parts.append(f',"dimensions":{json.dumps(dict(dimensions), separators=(",", ":"))}')
    if resolution != 60:
        parts.append(f',"resolution":{resolution}')
    return "".join(parts)


def metric_prefix(namespace: str, name: str, dimensions: Dimensions, unit: str, resolution: int) -> str:
    """``metric_head`` followed by the ``value`` key: the start of a one-value metric."""
    return metric_head(namespace, name, dimensions, unit, resolution) + ',"value":'


def metric_fragment(prefix: str, value: float, timestamp: float) -> str:
    return f'{prefix}{value!r},"timestamp":{timestamp:.3f}}}'


ENVELOPE_START: Final = f'{{"v":{WIRE_VERSION},"metrics":['
ENVELOPE_END: Final = "]}"
ENVELOPE_BYTES: Final = len(ENVELOPE_START) + len(ENVELOPE_END)
# What a ``"attempt": n`` field adds to an envelope, at most (n is bounded by the batcher's re-queue limit).
ATTEMPT_FIELD_BYTES: Final = len(',"attempt":') + 10


def envelope_of(fragments: list[str], attempt: int = 0) -> str:
    """A wire message body from metric fragments (JSON objects already serialized)."""
    if attempt:
        return f'{{"v":{WIRE_VERSION},"attempt":{attempt},"metrics":[{",".join(fragments)}]}}'
    return ENVELOPE_START + ",".join(fragments) + ENVELOPE_END


def datum_to_wire(series: Series, timestamp: float, values: list[float], counts: list[float]) -> dict[str, Any]:
    """A merged datum in wire form (used to re-queue unsent datums and set aside rejected ones)."""
    namespace, name, dimensions, unit, resolution = series
    metric: dict[str, Any] = {"namespace": namespace, "name": name, "values": values, "counts": counts}
    if unit != "None":
        metric["unit"] = unit
    if dimensions:
        metric["dimensions"] = dict(dimensions)
    if resolution != 60:
        metric["resolution"] = resolution
    metric["timestamp"] = timestamp
    return metric


def metric_json(metric: dict[str, Any]) -> str:
    """One wire metric as a compact JSON fragment for ``envelope_of``."""
    return json.dumps(metric, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SetAside:
    """An invalid wire metric as it came, where it was in its message, and why it was refused."""

    metric: Any
    position: int  # index in the source message's "metrics"
    rule: str
    reason: str


def set_aside_body(set_aside: list[SetAside], source_message_id: str) -> str:
    """The DLQ body of metrics the batcher set aside: strict JSON (RFC 8259), so any consumer can parse it.

    ``{"v": 1, "metrics": [...], "errors": [...], "source_message_id": "..."}``: ``errors[i]`` explains
    ``metrics[i]`` (``index`` is ``i``; ``position`` is where the metric was in the source message). Numbers JSON
    cannot hold (NaN, Infinity, -Infinity, which Python's and other producers' encoders write) are replaced in the
    metric by their name as a string, and listed by path in the error's ``non_finite``, e.g. ``{"value": "NaN"}``.
    """
    metrics, errors = [], []
    for index, entry in enumerate(set_aside):
        replaced: dict[str, str] = {}
        metrics.append(_finite_only(entry.metric, "", replaced))
        error: dict[str, Any] = {"index": index, "position": entry.position, "rule": entry.rule, "reason": entry.reason}
        if replaced:
            error["non_finite"] = replaced
        errors.append(error)
    envelope = {"v": WIRE_VERSION, "metrics": metrics, "errors": errors, "source_message_id": source_message_id}
    return json.dumps(envelope, allow_nan=False)


def _finite_only(value: Any, path: str, replaced: dict[str, str]) -> Any:
    """``value`` with every NaN or infinity replaced by its name as a string (noted in ``replaced`` by path)."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        replaced[path or "."] = name
        return name
    if isinstance(value, dict):
        return {key: _finite_only(item, f"{path}.{key}" if path else str(key), replaced) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_only(item, f"{path}[{i}]", replaced) for i, item in enumerate(value)]
    return value

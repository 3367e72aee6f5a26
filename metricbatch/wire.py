"""Wire format v1: one SQS message body holding many metrics (see README, "Wire format").

    {"v": 1, "metrics": [{"namespace": "...", "name": "...", "value": 1.5, "unit": "Milliseconds",
                          "dimensions": {"K": "V"}, "timestamp": 1795694400.25, "resolution": 60}, ...]}

A metric carries ``value`` or ``values`` (+ optional ``counts``); ``unit`` defaults to "None", ``resolution`` to 60
and ``timestamp`` to the message's SentTimestamp. Envelope extension: ``"attempt": n`` on re-queued messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, NotRequired, TypedDict

from metricbatch.exceptions import InvalidMetricError, WireFormatError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, MAX_VALUES_PER_DATUM
from metricbatch.validation import (
    Dimensions,
    check_dimensions,
    check_name,
    check_namespace,
    check_resolution,
    check_timestamp,
    check_unit,
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

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str
    resolution: int
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
        raise WireFormatError("envelope.version", f"unknown wire format version v={describe(version)}; expected 1")
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
    namespace = check_namespace(raw.get("namespace"))
    name = check_name(raw.get("name"))
    dimensions = check_dimensions(raw.get("dimensions"))
    unit = check_unit(raw.get("unit", "None"))
    resolution = check_resolution(raw.get("resolution", 60))
    timestamp = check_timestamp(raw.get("timestamp", default_timestamp), now)
    has_value, has_values = "value" in raw, "values" in raw
    if has_value == has_values:
        raise InvalidMetricError("value.missing", "a metric needs exactly one of 'value' or 'values'")
    if has_value:
        if "counts" in raw:
            raise InvalidMetricError("counts.without_values", "'counts' goes with 'values', not 'value'")
        return ParsedMetric(namespace, name, dimensions, unit, resolution, timestamp, [check_value(raw["value"])], None)
    values, counts = check_values(raw["values"], raw.get("counts"))
    if len(set(values)) > MAX_VALUES_PER_DATUM:  # pragma: no cover - check_values bounds the length already
        raise InvalidMetricError("values.count", "more than 150 distinct values")
    return ParsedMetric(namespace, name, dimensions, unit, resolution, timestamp, values, counts)


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


ENVELOPE_START = '{"v":1,"metrics":['
ENVELOPE_END = "]}"
ENVELOPE_BYTES = len(ENVELOPE_START) + len(ENVELOPE_END)


def envelope_of(fragments: list[str], attempt: int = 0) -> str:
    if attempt:
        return f'{{"v":1,"attempt":{attempt},"metrics":[{",".join(fragments)}]}}'
    return ENVELOPE_START + ",".join(fragments) + ENVELOPE_END


def datum_to_wire(
    namespace: str,
    name: str,
    dimensions: Dimensions,
    unit: str,
    resolution: int,
    timestamp: float,
    values: list[float],
    counts: list[float],
) -> dict[str, Any]:
    """A merged datum in wire form (used to re-queue unsent datums and by the fallback path)."""
    metric: dict[str, Any] = {"namespace": namespace, "name": name, "values": values, "counts": counts}
    if unit != "None":
        metric["unit"] = unit
    if dimensions:
        metric["dimensions"] = dict(dimensions)
    if resolution != 60:
        metric["resolution"] = resolution
    metric["timestamp"] = timestamp
    return metric

"""CloudWatch's rules for one metric datum, enforced before anything leaves the process.

Every check raises InvalidMetricError naming the rule and the offending value; see limits.py for sources.
The fast paths of the hot loops live here too (``check_value``, ``check_timestamp``), so no caller restates a rule.
"""

from __future__ import annotations

import difflib
import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from metricbatch.exceptions import InvalidMetricError
from metricbatch.limits import (
    MAX_ABS_VALUE,
    MAX_DIMENSION_NAME_LENGTH,
    MAX_DIMENSION_VALUE_LENGTH,
    MAX_DIMENSIONS,
    MAX_METRIC_NAME_LENGTH,
    MAX_NAMESPACE_LENGTH,
    MAX_TIMESTAMP_AGE_SECONDS,
    MAX_TIMESTAMP_FUTURE_SECONDS,
    MAX_VALUES_PER_DATUM,
    MIN_ABS_VALUE,
    RESERVED_NAMESPACE_PREFIX,
    STORAGE_RESOLUTIONS,
    UNITS,
)

Dimensions = tuple[tuple[str, str], ...]
_NAIVE_EPOCH = datetime(1970, 1, 1)
# The largest JSON integer a value or count may be (exactly MAX_ABS_VALUE).
_MAX_INT_VALUE = 2**360


class Series(NamedTuple):
    """One CloudWatch metric at one storage resolution: what samples must share to be merged into one datum.

    Build it with ``check_series`` (every part validated); producers and the batcher cache it per series.
    """

    namespace: str
    name: str
    dimensions: Dimensions  # sorted by name
    unit: str
    resolution: int


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_text(kind: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidMetricError(f"{kind}.type", f"{kind} must be a string, got {type(value).__name__}")
    if not value or not value.strip():
        raise InvalidMetricError(f"{kind}.empty", f"{kind} must have at least one non-whitespace character")
    if len(value) > max_length:
        raise InvalidMetricError(
            f"{kind}.length", f"{kind} is {len(value)} characters, more than {max_length}: {_short(value)}"
        )
    # ASCII printable only (32..126): CloudWatch rejects control and non-ASCII characters.
    if not (value.isascii() and value.isprintable()):
        raise InvalidMetricError(f"{kind}.ascii", f"{kind} must be printable ASCII: {_short(value)}")
    return value


def check_name(name: object) -> str:
    return _check_text("name", name, MAX_METRIC_NAME_LENGTH)


def check_namespace(namespace: object) -> str:
    ns = _check_text("namespace", namespace, MAX_NAMESPACE_LENGTH)
    if ns.startswith(":"):
        raise InvalidMetricError("namespace.colon", f"namespace must not start with ':': {_short(ns)}")
    if ns.startswith(RESERVED_NAMESPACE_PREFIX):
        raise InvalidMetricError("namespace.reserved", f"namespace must not start with 'AWS/': {_short(ns)}")
    return ns


def check_dimensions(dimensions: object) -> Dimensions:
    """Validate and return dimensions as a tuple of (name, value) pairs sorted by name."""
    if dimensions is None:
        return ()
    if not isinstance(dimensions, Mapping):
        raise InvalidMetricError(
            "dimensions.type", f"dimensions must be a mapping of name to value, got {type(dimensions).__name__}"
        )
    if len(dimensions) > MAX_DIMENSIONS:
        raise InvalidMetricError(
            "dimensions.count", f"{len(dimensions)} dimensions, more than CloudWatch's {MAX_DIMENSIONS}"
        )
    pairs = []
    for key, val in dimensions.items():
        dim_name = _check_text("dimension_name", key, MAX_DIMENSION_NAME_LENGTH)
        if dim_name.startswith(":"):
            raise InvalidMetricError("dimension_name.colon", f"dimension name must not start with ':': {dim_name!r}")
        try:
            pairs.append((dim_name, _check_text("dimension_value", val, MAX_DIMENSION_VALUE_LENGTH)))
        except InvalidMetricError as exc:  # say whose value it is: the rule alone does not find it
            raise InvalidMetricError(exc.rule, f"dimension {dim_name!r}: {exc.detail}") from None
    pairs.sort()
    return tuple(pairs)


def check_value(value: object) -> float:
    """A metric value as CloudWatch takes it.

    The one rule set for values, on both sides (``send_metric`` and the batcher's wire messages): a number (not a
    bool), finite, within +/-2^360. A non-zero value closer to zero than 2^-360, which CloudWatch would reject, is
    returned as 0.0: it is 0 for every statistic, and a rejected value would cost its whole merged datum.

    Raises:
        InvalidMetricError: ``value.type``, ``value.finite`` or ``value.range``.
    """
    # Fast path, for the hot loops of both sides: a float already inside CloudWatch's range (NaN fails both tests),
    # or zero (counters and flags: 0.0 is as common as 1.0; -0.0 becomes 0.0, as on the slow path).
    if type(value) is float:
        if MIN_ABS_VALUE <= value <= MAX_ABS_VALUE or -MAX_ABS_VALUE <= value <= -MIN_ABS_VALUE:
            return value
        if value == 0.0:
            return 0.0
    return _check_value(value)


def _check_value(value: object) -> float:
    # bool is an int subclass; True as a metric value is almost always a bug.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetricError("value.type", f"value must be a number, got {type(value).__name__}: {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidMetricError("value.range", f"value {_short(value)} is outside +/-2^360") from None
    if not math.isfinite(number):
        raise InvalidMetricError("value.finite", f"value must be finite, got {number!r}")
    magnitude = abs(number)
    if magnitude > MAX_ABS_VALUE:
        raise InvalidMetricError("value.range", f"value {number!r} is outside +/-2^360")
    if magnitude < MIN_ABS_VALUE:
        return 0.0  # zero itself, or a non-zero value CloudWatch rejects as too small: see MIN_ABS_VALUE
    return number


def check_values(values: object, counts: object | None) -> tuple[list[float], list[float]]:
    """Validate a Values/Counts pair (counts default to 1 each; at least one count must be above 0)."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidMetricError("values.type", "values must be a non-empty list of numbers")
    if len(values) > MAX_VALUES_PER_DATUM:
        raise InvalidMetricError(
            "values.count", f"{len(values)} values, more than CloudWatch's {MAX_VALUES_PER_DATUM} per datum"
        )
    # check_value's rules with its fast path inline (plus JSON's ints): a call per value costs as much as the check.
    checked = [
        v if type(v) is float and (MIN_ABS_VALUE <= v <= MAX_ABS_VALUE or -MAX_ABS_VALUE <= v <= -MIN_ABS_VALUE)
        else float(v) if type(v) is int and -_MAX_INT_VALUE <= v <= _MAX_INT_VALUE
        else check_value(v)
        for v in values
    ]  # fmt: skip
    if counts is None:
        return checked, [1.0] * len(checked)
    if not isinstance(counts, list | tuple) or len(counts) != len(values):
        raise InvalidMetricError("counts.length", "counts must be a list as long as values")
    checked_counts = [
        c if type(c) is float and MIN_ABS_VALUE <= c <= MAX_ABS_VALUE
        else float(c) if type(c) is int and 0 <= c <= _MAX_INT_VALUE
        else _check_count(c)
        for c in counts
    ]  # fmt: skip
    if not any(checked_counts):
        raise InvalidMetricError(
            "counts.zero", f"every count is 0: the metric carries no sample, counts {_short(counts)}"
        )
    return checked, checked_counts


def _check_count(count: object) -> float:
    checked = check_value(count)  # finite, within 2^360; a tiny count is 0
    if checked < 0:
        raise InvalidMetricError("counts.negative", f"counts must not be negative, got {checked!r}")
    return checked


def check_unit(unit: object) -> str:
    # Type first: an unhashable JSON value (list, object) must not reach the set lookup (TypeError).
    if not isinstance(unit, str) or unit not in UNITS:
        raise InvalidMetricError("unit.unknown", f"unknown unit {_short(unit)}{_unit_hint(unit)}")
    return str(unit)


def _unit_hint(unit: object) -> str:
    # Only a suggestion: the unit is rejected all the same, since CloudWatch accepts exact names only.
    by_folded = {name.casefold(): name for name in UNITS}
    close = difflib.get_close_matches(unit.casefold(), by_folded, n=1, cutoff=0.8) if isinstance(unit, str) else []
    if close:
        return f"; did you mean {by_folded[close[0]]!r}?"
    return f"; CloudWatch accepts {sorted(UNITS)}"


def check_resolution(resolution: object) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int | float) or resolution not in STORAGE_RESOLUTIONS:
        raise InvalidMetricError("resolution.value", f"storage resolution must be 1 or 60, got {_short(resolution)}")
    return int(resolution)


def check_series(namespace: object, name: object, dimensions: object, unit: object, resolution: object) -> Series:
    """Validate every part of a series (in this order: namespace, name, dimensions, unit, resolution).

    Raises:
        InvalidMetricError: naming the first rule broken.
    """
    return Series(
        check_namespace(namespace),
        check_name(name),
        check_dimensions(dimensions),
        check_unit(unit),
        check_resolution(resolution),
    )


def to_epoch(timestamp: object) -> float:
    """Epoch seconds from a datetime (naive = UTC), a number of epoch seconds, or an ISO 8601 string."""
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            # Naive = UTC (datetime.timestamp() would read it as local time); plain arithmetic, no tzinfo copy.
            return (timestamp - _NAIVE_EPOCH).total_seconds()
        return timestamp.timestamp()
    if isinstance(timestamp, bool):
        raise InvalidMetricError("timestamp.type", "timestamp must be a datetime or epoch seconds, got bool")
    if isinstance(timestamp, int | float):
        try:
            epoch = float(timestamp)
        except OverflowError:  # a JSON integer beyond float range
            raise InvalidMetricError("timestamp.type", f"timestamp is out of range: {_short(timestamp)}") from None
        if not math.isfinite(epoch):
            raise InvalidMetricError("timestamp.type", f"timestamp must be finite, got {epoch!r}")
        return epoch
    if isinstance(timestamp, str):
        try:
            parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidMetricError("timestamp.format", f"timestamp is not ISO 8601: {_short(timestamp)}") from None
        return to_epoch(parsed)
    raise InvalidMetricError("timestamp.type", f"timestamp must be a datetime or epoch seconds: {_short(timestamp)}")


def check_timestamp(timestamp: object, now: float | None = None) -> float:
    """Epoch seconds of a timestamp CloudWatch accepts: at most 14 days old and 2 hours ahead of ``now``.

    A naive ``datetime`` is read as UTC (not local time, as ``datetime.timestamp()`` would); the messages of
    ``timestamp.too_old`` and ``timestamp.too_new`` say so when one was given.

    Raises:
        InvalidMetricError: ``timestamp.type``, ``timestamp.format``, ``timestamp.too_old`` or ``timestamp.too_new``.
    """
    now = time.time() if now is None else now
    # Fast path, for the hot loops of both sides: epoch seconds as a float inside the window.
    if type(timestamp) is float and now - MAX_TIMESTAMP_AGE_SECONDS <= timestamp <= now + MAX_TIMESTAMP_FUTURE_SECONDS:
        return timestamp
    epoch = to_epoch(timestamp)
    naive = " (a naive datetime is read as UTC)" if isinstance(timestamp, datetime) and timestamp.tzinfo is None else ""
    if epoch < now - MAX_TIMESTAMP_AGE_SECONDS:
        raise InvalidMetricError(
            "timestamp.too_old", f"timestamp {epoch:.3f}{naive} is more than 14 days before now ({now:.0f})"
        )
    if epoch > now + MAX_TIMESTAMP_FUTURE_SECONDS:
        raise InvalidMetricError(
            "timestamp.too_new", f"timestamp {epoch:.3f}{naive} is more than 2 hours after now ({now:.0f})"
        )
    return epoch


def describe(value: Any) -> str:
    """A short printable form of a value for error messages and DLQ reasons."""
    return _short(value)


Rollups = tuple[tuple[str, ...], ...]


def check_rollups(rollups: object, dimensions: Dimensions) -> Rollups:
    """The dimension sets a metric is also recorded under, besides its full ``dimensions``: each a sorted tuple of
    keys. ``[]`` is the set with no dimensions; a set equal to the full one, or repeated, is recorded once.

    Raises:
        InvalidMetricError: ``rollup.type`` (not a list of lists of dimension names) or ``rollup.key`` (a name that
            is not among the metric's dimensions, defaults included).
    """
    if rollups is None:
        return ()
    if isinstance(rollups, str | bytes | Mapping) or not isinstance(rollups, list | tuple):
        raise InvalidMetricError(
            "rollup.type", f"rollups must be a list of lists of dimension names, got {type(rollups).__name__}"
        )
    names = {name for name, _ in dimensions}
    full = tuple(sorted(names))
    sets: list[tuple[str, ...]] = []
    for subset in rollups:
        if isinstance(subset, str | bytes | Mapping) or not isinstance(subset, list | tuple):
            raise InvalidMetricError(
                "rollup.type", f"each roll-up must be a list of dimension names, got {_short(subset)}"
            )
        for key in subset:
            if not isinstance(key, str) or key not in names:
                raise InvalidMetricError(
                    "rollup.key", f"roll-up key {_short(key)} is not among the metric's dimensions {sorted(names)}"
                )
        keys = tuple(sorted(set(subset)))
        if keys != full and keys not in sets:
            sets.append(keys)
    return tuple(sets)


def parse_dimension_list(text: str) -> Dimensions:
    """Dimensions from ``"K=v,K2=v2"`` (the form of METRICBATCH_DEFAULT_DIMENSIONS): blanks around names and values
    are ignored, a value keeps any further ``=``; an empty text is no dimensions.

    Raises:
        InvalidMetricError: ``dimensions.format`` (a part without ``=``, or a name given twice), or any rule of
            ``check_dimensions`` (the 30-dimension limit, ASCII, lengths).
    """
    pairs: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise InvalidMetricError("dimensions.format", f"expected Name=value, got {_short(part.strip())}")
        name = name.strip()
        if name in pairs:
            raise InvalidMetricError("dimensions.format", f"dimension {name!r} is given twice")
        pairs[name] = value.strip()
    return check_dimensions(pairs)

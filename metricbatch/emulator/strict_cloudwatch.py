"""A strict stand-in for CloudWatch's PutMetricData validation.

moto accepts what CloudWatch rejects (31 dimensions, +Inf, 1,001 datums, 30-day-old timestamps). This checks a
PutMetricData JSON body against the real service's documented rules, written independently of
metricbatch.validation so that the producer's and batcher's own checks are tested, not trusted.
"""

from __future__ import annotations

import math
import time
from typing import Any

# The documented limits, restated here on purpose (see module docstring).
_MAX_DATUMS = 1000
_MAX_BODY_BYTES = 1_000_000  # "1 MB"; the stricter reading
_MAX_VALUES = 150
_MAX_DIMENSIONS = 30
_MAX_ABS = 2.0**360
_MIN_ABS = 2.0**-360  # "too small": a non-zero magnitude below 2^-360 is answered with InvalidParameterValue
_MAX_AGE_S = 14 * 86400
_MAX_AHEAD_S = 2 * 3600
_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


class CloudWatchRejection(Exception):
    """What CloudWatch answers with HTTP 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> CloudWatchRejection:
    return CloudWatchRejection("InvalidParameterValue", message)


def _text(field: str, value: Any, max_len: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise _invalid(f"The parameter {field} must be a string of 1 to {max_len} characters.")
    if not value.strip() or any(not 32 <= ord(ch) <= 126 for ch in value):
        raise _invalid(f"The parameter {field} must contain only printable ASCII and a non-whitespace character.")


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"The value for parameter {field} must be a number.")
    number = float(value)
    if not math.isfinite(number):
        raise _invalid(f"The value {value} for parameter {field} is invalid.")
    return number


def _measurement(field: str, value: Any) -> float:
    """Value, Values, Counts and StatisticValues: "Values must be in the range of -2^360 to 2^360", and CloudWatch
    rejects values that are "too small" as well (a non-zero magnitude below 2^-360)."""
    number = _number(field, value)
    if abs(number) > _MAX_ABS or 0.0 < abs(number) < _MIN_ABS:
        raise _invalid(f"The value {value} for parameter {field} is invalid.")
    return number


def validate_put_metric_data(body: dict[str, Any], raw_size: int, now: float | None = None) -> None:
    """Raise CloudWatchRejection if the real service would refuse this PutMetricData request."""
    now = time.time() if now is None else now
    if raw_size > _MAX_BODY_BYTES:
        raise CloudWatchRejection("RequestEntityTooLarge", f"Request size {raw_size} exceeded {_MAX_BODY_BYTES} bytes")
    namespace = body.get("Namespace")
    if namespace is None:
        raise CloudWatchRejection("MissingParameter", "The parameter Namespace is required.")
    _text("Namespace", namespace, 255)
    if namespace.startswith((":", "AWS/")):
        raise _invalid("The value AWS/ for parameter Namespace is invalid.")
    data = body.get("MetricData")
    if not isinstance(data, list) or not data:
        raise CloudWatchRejection("MissingParameter", "The parameter MetricData is required.")
    if len(data) > _MAX_DATUMS:
        raise _invalid(f"The collection MetricData must not have a size greater than {_MAX_DATUMS}.")
    for i, datum in enumerate(data, start=1):
        where = f"MetricData.member.{i}"
        if not isinstance(datum, dict):
            raise _invalid(f"The parameter {where} must be a structure.")
        _text(f"{where}.MetricName", datum.get("MetricName"), 255)
        dimensions = datum.get("Dimensions", [])
        if not isinstance(dimensions, list) or len(dimensions) > _MAX_DIMENSIONS:
            raise _invalid(f"The collection {where}.Dimensions must not have a size greater than {_MAX_DIMENSIONS}.")
        names = set()
        for j, dim in enumerate(dimensions, start=1):
            _text(f"{where}.Dimensions.member.{j}.Name", dim.get("Name"), 255)
            _text(f"{where}.Dimensions.member.{j}.Value", dim.get("Value"), 1024)
            if dim["Name"].startswith(":"):
                raise _invalid(f"The parameter {where}.Dimensions.member.{j}.Name must not start with ':'.")
            if dim["Name"] in names:
                raise CloudWatchRejection("InvalidParameterCombination", f"Duplicate dimension name {dim['Name']}")
            names.add(dim["Name"])
        has_value, has_values, has_stats = "Value" in datum, "Values" in datum, "StatisticValues" in datum
        if has_value + has_values + has_stats != 1:
            raise CloudWatchRejection(
                "InvalidParameterCombination",
                f"The parameters {where}.Value, Values and StatisticValues are mutually exclusive; give exactly one.",
            )
        if has_value:
            _measurement(f"{where}.Value", datum["Value"])
        if has_values:
            values = datum["Values"]
            if not isinstance(values, list) or not values or len(values) > _MAX_VALUES:
                raise _invalid(f"The collection {where}.Values must have 1 to {_MAX_VALUES} members.")
            for k, v in enumerate(values, start=1):
                _measurement(f"{where}.Values.member.{k}", v)
            if "Counts" in datum:
                counts = datum["Counts"]
                if not isinstance(counts, list) or len(counts) != len(values):
                    raise CloudWatchRejection(
                        "InvalidParameterCombination", f"{where}.Counts must have as many members as Values."
                    )
                for k, c in enumerate(counts, start=1):
                    if _measurement(f"{where}.Counts.member.{k}", c) < 0:
                        raise _invalid(f"The parameter {where}.Counts.member.{k} must not be negative.")
        elif "Counts" in datum:
            raise CloudWatchRejection("InvalidParameterCombination", f"{where}.Counts needs {where}.Values.")
        if has_stats:
            stats = datum["StatisticValues"]
            for key in ("SampleCount", "Sum", "Minimum", "Maximum"):
                _measurement(f"{where}.StatisticValues.{key}", stats.get(key))
        unit = datum.get("Unit", "None")
        if unit not in _UNITS:
            raise _invalid(f"The value {unit} for parameter {where}.Unit is invalid.")
        resolution = datum.get("StorageResolution", 60)
        if resolution not in (1, 60) or isinstance(resolution, bool):
            raise _invalid(f"The value {resolution} for parameter {where}.StorageResolution is invalid.")
        if "Timestamp" in datum:
            ts = _number(f"{where}.Timestamp", datum["Timestamp"])
            if ts < now - _MAX_AGE_S or ts > now + _MAX_AHEAD_S:
                raise _invalid(
                    f"The parameter {where}.Timestamp must specify a time no more than two weeks in the past "
                    "or two hours in the future."
                )

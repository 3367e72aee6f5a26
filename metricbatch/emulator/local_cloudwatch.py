"""Where moto's CloudWatch computes statistics differently from the real one, and what the gateway does about it.

moto stores ``Values``/``Counts`` by appending each value ``int(count)`` times, so fractional counts come out wrong
(values [1, 2] with counts [1.5, 2]: Sum 5 and SampleCount 3 instead of 5.5 and 3.5), and it cannot compute
percentiles (``ExtendedStatistics`` answer HTTP 500; ``p99`` in GetMetricData returns nothing useful).

The gateway therefore hands moto each ``Values``/``Counts`` datum as the equivalent statistic set (SampleCount,
Sum, Minimum, Maximum), which moto aggregates exactly, so Sum, SampleCount, Minimum, Maximum and Average read back
as CloudWatch computes them; and it refuses percentile and other statistics moto cannot compute with a 400 that
says so, instead of a 500 or a wrong number.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any
from urllib.parse import parse_qs

# What moto's statistics code computes (moto/cloudwatch/models.py, class Statistics).
COMPUTABLE_STATISTICS = frozenset({"SampleCount", "Sum", "Minimum", "Maximum", "Average"})
UNSUPPORTED_CODE = "UnsupportedOperation"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def as_statistic_set(datum: dict[str, Any]) -> dict[str, float] | None:
    """The statistic set equal to a well-formed ``Values``/``Counts`` datum; None for any other datum."""
    values, counts = datum.get("Values"), datum.get("Counts")
    if not isinstance(values, list) or not values:
        return None
    if counts is None:
        counts = [1] * len(values)
    if not isinstance(counts, list) or len(counts) != len(values):
        return None
    pairs = [(_number(v), _number(c)) for v, c in zip(values, counts, strict=True)]
    weighted = [(v, c) for v, c in pairs if v is not None and c is not None and c > 0]
    if any(v is None or c is None or c < 0 for v, c in pairs) or not weighted:
        return None  # leave it to moto as it is (the strict check has already judged it)
    return {
        "SampleCount": math.fsum(c for _, c in weighted),
        "Sum": math.fsum(v * c for v, c in weighted),
        "Minimum": min(v for v, _ in weighted),
        "Maximum": max(v for v, _ in weighted),
    }


def fold_values_into_statistic_sets(body: dict[str, Any]) -> bool:
    """Rewrite a PutMetricData JSON body in place (see module docstring); True if anything changed."""
    changed = False
    data = body.get("MetricData")
    for datum in data if isinstance(data, list) else []:
        if not isinstance(datum, dict):
            continue
        stats = as_statistic_set(datum)
        if stats is not None:
            datum.pop("Values")
            datum.pop("Counts", None)
            datum["StatisticValues"] = stats
            changed = True
    return changed


def requested_statistics(operation: str, body: bytes) -> list[str]:
    """Every statistic a GetMetricStatistics or GetMetricData request asks for (JSON or query protocol)."""
    try:
        params: Any = json.loads(body)
    except ValueError:
        form = parse_qs(body.decode("latin-1"))
        return [value for key, values in form.items() if _is_statistic_key(key) for value in values]
    if not isinstance(params, dict):
        return []
    if operation == "cloudwatch:GetMetricStatistics":
        return [str(s) for s in [*params.get("Statistics", []), *params.get("ExtendedStatistics", [])]]
    queries = params.get("MetricDataQueries", [])
    return [str(q["MetricStat"].get("Stat")) for q in queries if isinstance(q, dict) and "MetricStat" in q]


def _is_statistic_key(key: str) -> bool:
    # Query protocol: Statistics.member.1, ExtendedStatistics.member.1, MetricDataQueries.member.1.MetricStat.Stat
    return key.startswith(("Statistics.", "ExtendedStatistics.")) or key.endswith(".MetricStat.Stat")


def unsupported_statistics_message(operation: str, body: bytes) -> str | None:
    """Why the local CloudWatch refuses a statistics query, or None when it can answer it correctly."""
    if operation not in ("cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData"):
        return None
    unsupported = sorted({s for s in requested_statistics(operation, body) if s not in COMPUTABLE_STATISTICS})
    if not unsupported:
        return None
    return (
        f"The local CloudWatch (moto) cannot compute {', '.join(unsupported)}: it answers "
        f"{', '.join(sorted(COMPUTABLE_STATISTICS))} only. Check percentiles and other extended statistics on "
        "real CloudWatch."
    )


# -- GetMetricStatistics matches dimensions exactly ------------------------------------------------------------------
# CloudWatch treats each combination of dimensions as a metric of its own: GetMetricStatistics answers for exactly
# the dimensions asked for (none: only the series published with none). moto matches any series that holds the
# asked-for dimensions among others, so a roll-up (a subset of the keys) would read back the detail's samples too.
_exact_dimensions = threading.local()
_patched = False
_patch_lock = threading.Lock()


def match_dimensions_exactly() -> None:
    """Make moto's GetMetricStatistics match dimensions as CloudWatch does (idempotent; process-wide)."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        from moto.cloudwatch.models import CloudWatchBackend

        all_metrics = CloudWatchBackend.get_all_metrics
        statistics = CloudWatchBackend.get_metric_statistics

        def get_all_metrics(self: Any) -> Any:
            metrics = all_metrics(self)
            wanted = getattr(_exact_dimensions, "wanted", None)
            if wanted is None:
                return metrics
            return [md for md in metrics if sorted((d.name, d.value) for d in md.dimensions) == wanted]

        def get_metric_statistics(self: Any, *args: Any, **kwargs: Any) -> Any:
            dimensions = kwargs["dimensions"] if "dimensions" in kwargs else args[6] if len(args) > 6 else []
            _exact_dimensions.wanted = sorted((d["Name"], d.get("Value")) for d in dimensions or [])
            try:
                return statistics(self, *args, **kwargs)
            finally:
                _exact_dimensions.wanted = None

        CloudWatchBackend.get_all_metrics = get_all_metrics  # type: ignore[method-assign]
        CloudWatchBackend.get_metric_statistics = get_metric_statistics  # type: ignore[method-assign]
        _patched = True

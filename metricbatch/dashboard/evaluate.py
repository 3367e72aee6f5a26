"""Every widget of a dashboard body evaluated against a CloudWatch endpoint (the local one, or any other).

Metric rows are read with ``GetMetricData`` (one query per row, so one statistic the endpoint cannot compute, such
as ``p99`` on the local CloudWatch, marks that row alone as unavailable, with the endpoint's reason); expression
rows are evaluated here with the metric-math subset of :mod:`metricbatch.dashboard.metric_math`. Periods are each
row's own (the body's ``periodOverride`` ``inherit``), except that ``setPeriodToTimeRange`` makes the whole range one
period, as CloudWatch does for single-value widgets.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from metricbatch.dashboard.body import DashboardBody
from metricbatch.dashboard.metric_math import MetricMathError, Series, Value, evaluate, ids_used

logger = logging.getLogger(__name__)

DEFAULT_PERIOD_SECONDS = 300  # CloudWatch's default period of a metric widget
DEFAULT_STAT = "Average"  # CloudWatch's default statistic of a metric row
_DURATION = re.compile(r"^-P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass
class EvaluatedRow:
    """One row of a metric widget: its label, its series on the widget's timestamps, or why it has none."""

    label: str
    id: str
    expression: str | None
    metric: tuple[str, ...] | None  # namespace, name, dimension name, value, ...
    stat: str | None
    period: int
    visible: bool
    y_axis: str
    start: float  # the first period's start (aligned to the period)
    timestamps: list[datetime] = field(default_factory=list)
    values: Series | None = None
    unavailable: str | None = None  # why no value can be computed locally (never shown as zero)
    inputs_without_data: list[str] = field(default_factory=list)  # metric ids an expression read (FILLed) as empty

    @property
    def latest(self) -> float | None:
        """What a single-value widget shows: the last datapoint, None when the series has none."""
        if self.values is None:
            return None
        present = self.values[~np.isnan(self.values)]
        return float(present[-1]) if present.size else None


@dataclass
class EvaluatedWidget:
    type: str
    view: str
    title: str
    x: int
    y: int
    width: int
    height: int
    properties: dict[str, Any]
    rows: list[EvaluatedRow] = field(default_factory=list)

    def row(self, label: str) -> EvaluatedRow:
        (found,) = [r for r in self.rows if r.label == label]
        return found


def parse_relative_start(text: str) -> int:
    """Seconds in a dashboard's relative ``start`` such as ``-P7D`` or ``-PT3H``."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"unsupported dashboard start {text!r} (expected a relative -P... duration)")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def evaluate_dashboard(body: DashboardBody, cloudwatch: Any, *, start: float, end: float) -> list[EvaluatedWidget]:
    """Every widget of ``body`` over ``[start, end)`` (epoch seconds)."""
    return [_evaluate_widget(widget, body, cloudwatch, start, end) for widget in body.widgets]


def _evaluate_widget(
    widget: dict[str, Any], body: DashboardBody, cloudwatch: Any, start: float, end: float
) -> EvaluatedWidget:
    properties: dict[str, Any] = widget.get("properties", {})
    evaluated = EvaluatedWidget(
        type=widget.get("type", "metric"),
        view=properties.get("view", "timeSeries"),
        title=properties.get("title", ""),
        x=int(widget.get("x", 0)),
        y=int(widget.get("y", 0)),
        width=int(widget.get("width", 6)),
        height=int(widget.get("height", 6)),
        properties=properties,
    )
    if evaluated.type != "metric":
        return evaluated
    whole_range = bool(properties.get("setPeriodToTimeRange"))
    previous: list[Any] = []
    for index, raw in enumerate(properties.get("metrics", [])):
        parts = [p for p in raw if not isinstance(p, dict)]
        # "." repeats the previous row's value at that position (dashboard body shorthand)
        parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
        previous = parts
        options: dict[str, Any] = next((p for p in raw if isinstance(p, dict)), {})
        period = int(options.get("period") or properties.get("period") or DEFAULT_PERIOD_SECONDS)
        if whole_range:
            period = max(60, math.ceil((end - start) / 60) * 60)
        expression = options.get("expression")
        metric = tuple(str(body.dimension_values.get(str(p), p)) for p in parts) if not expression else None
        evaluated.rows.append(
            EvaluatedRow(
                label=options.get("label") or (expression if expression else str(parts[1]) if len(parts) > 1 else ""),
                id=options.get("id") or f"row{index}",
                expression=expression,
                metric=metric,
                stat=None if expression else str(options.get("stat") or properties.get("stat") or DEFAULT_STAT),
                period=period,
                visible=options.get("visible", True) is not False,
                y_axis=str(options.get("yAxis", "left")),
                start=_aligned_start(start, period, whole_range),
            )
        )
    by_id = {row.id: row for row in evaluated.rows}
    for row in evaluated.rows:
        _compute(row, by_id, cloudwatch, start, end, stack=())
    for row in evaluated.rows:
        if row.expression is not None:
            row.inputs_without_data = sorted(_empty_inputs(row, by_id, set()))
    return evaluated


def _empty_inputs(row: EvaluatedRow, by_id: dict[str, EvaluatedRow], seen: set[str]) -> set[str]:
    found: set[str] = set()
    for name in ids_used(row.expression or ""):
        other = by_id.get(name)
        if other is None or name in seen:
            continue
        seen.add(name)
        if other.expression is not None:
            found |= _empty_inputs(other, by_id, seen)
        elif other.values is None or bool(np.all(np.isnan(other.values))):
            found.add(name)
    return found


def _aligned_start(start: float, period: int, whole_range: bool) -> float:
    """Periods start on multiples of the period (CloudWatch aligns them to the clock), unless one spans the range."""
    return start if whole_range else math.floor(start / period) * period


def _grid(start: float, end: float, period: int) -> list[datetime]:
    points = max(1, math.ceil((end - start) / period))
    return [datetime.fromtimestamp(start + i * period, tz=UTC) for i in range(points)]


def _compute(
    row: EvaluatedRow, by_id: dict[str, EvaluatedRow], cloudwatch: Any, start: float, end: float, stack: tuple[str, ...]
) -> None:
    if row.values is not None or row.unavailable is not None:
        return
    row.timestamps = _grid(row.start, end, row.period)
    if row.expression is None:
        _fetch(row, cloudwatch, row.start, end)
        return
    if row.id in stack:
        row.unavailable = f"expression {row.id!r} refers to itself through {' -> '.join(stack)}"
        return

    def resolve(name: str) -> Value:
        other = by_id.get(name)
        if other is None:
            raise MetricMathError(f"metric math: {row.expression!r} uses id {name!r}, which its widget does not define")
        _compute(other, by_id, cloudwatch, start, end, (*stack, row.id))
        if other.values is None:
            raise _Unavailable(f"{name}: {other.unavailable}")
        if other.period != row.period:
            raise MetricMathError(
                f"metric math: {row.id!r} (period {row.period}) mixes {name!r} (period {other.period})"
            )
        return other.values

    try:
        value = evaluate(row.expression, resolve, len(row.timestamps))
    except _Unavailable as exc:
        row.unavailable = str(exc)
        return
    if isinstance(value, list):
        raise MetricMathError(f"metric math: {row.expression!r} gives an array; a widget row shows one series")
    row.values = value if isinstance(value, np.ndarray) else np.full(len(row.timestamps), float(value))


class _Unavailable(Exception):
    """An expression depends on a row the endpoint cannot compute."""


def _fetch(row: EvaluatedRow, cloudwatch: Any, start: float, end: float) -> None:
    from botocore.exceptions import ClientError

    assert row.metric is not None and row.stat is not None
    namespace, name, *dimension_parts = row.metric
    dimensions = [
        {"Name": dimension_parts[i], "Value": dimension_parts[i + 1]} for i in range(0, len(dimension_parts) - 1, 2)
    ]
    try:
        response = cloudwatch.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "q",
                    "MetricStat": {
                        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                        "Period": row.period,
                        "Stat": row.stat,
                    },
                }
            ],
            StartTime=datetime.fromtimestamp(start, tz=UTC),
            EndTime=datetime.fromtimestamp(end, tz=UTC),
        )
    except ClientError as exc:
        row.unavailable = exc.response.get("Error", {}).get("Message") or str(exc)
        logger.debug("row %s unavailable: %s", row.label, row.unavailable)
        return
    values = np.full(len(row.timestamps), np.nan)
    for result in response.get("MetricDataResults", []):
        for timestamp, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
            index = round((timestamp.timestamp() - start) / row.period)
            if 0 <= index < len(values):
                values[index] = value
    row.values = values

"""Packing datums into PutMetricData requests: one namespace per request, <= 1,000 datums, <= 1,000,000 bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

from metricbatch.aws.chunking import chunked
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.limits import MAX_DATUMS_PER_REQUEST, MAX_REQUEST_BYTES

_SEPARATOR_BYTES: Final = len(", ")
# Upper bounds of a datum's JSON, to skip exact sizing when a request is far from the byte limit:
# a float's repr is at most 24 characters ("-2.2250738585072014e-308"), plus its separator;
_FLOAT_BYTES: Final = 24 + _SEPARATOR_BYTES
# keys, punctuation, Timestamp, Unit and StorageResolution of one datum ({"MetricName": ..., "StorageResolution": 1})
_DATUM_FIXED_BYTES: Final = 200
_DIMENSION_FIXED_BYTES: Final = 40  # {"Name": "", "Value": ""},
# names and values are printable ASCII (validated): JSON escapes at most double them (\" and \\).
_ESCAPE_FACTOR: Final = 2


@dataclass(slots=True)
class PutMetricDataRequest:
    """One PutMetricData call's parameters and the datums behind them."""

    namespace: str
    datums: list[Datum] = field(default_factory=list)
    metric_data: list[dict[str, Any]] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        return {"Namespace": self.namespace, "MetricData": self.metric_data}

    @property
    def size_bytes(self) -> int:
        """The request body as botocore's JSON protocol serializes it (json.dumps' default separators)."""
        return len(json.dumps(self.params()))

    @property
    def splittable(self) -> bool:
        """More than one datum, or one datum of several values: CloudWatch's refusal can be narrowed down."""
        return len(self.datums) > 1 or len(self.datums[0].values) > 1

    def split(self) -> tuple[PutMetricDataRequest, PutMetricDataRequest]:
        """Two halves of this request, to isolate what CloudWatch rejects: halves of the datums, or of a single
        datum's values (a merged datum mixes samples of many producers; one bad value must not cost the others)."""
        if len(self.datums) == 1:
            first, second = self.datums[0].split_values()
            return _request_of(self.namespace, [first]), _request_of(self.namespace, [second])
        half = len(self.datums) // 2
        return _request_of(self.namespace, self.datums[:half]), _request_of(self.namespace, self.datums[half:])


def datum_to_api(datum: Datum) -> dict[str, Any]:
    """A MetricDatum as boto3 takes it; single samples use Value, the rest Values (Counts only when not all 1)."""
    api: dict[str, Any] = {"MetricName": datum.name}
    if datum.dimensions:
        api["Dimensions"] = [{"Name": n, "Value": v} for n, v in datum.dimensions]
    # botocore's JSON protocol sends whole epoch seconds; send exactly that so size estimates match the wire.
    api["Timestamp"] = int(datum.timestamp)
    if len(datum.values) == 1 and datum.counts[0] == 1.0:
        api["Value"] = datum.values[0]
    else:
        api["Values"] = datum.values
        if any(c != 1.0 for c in datum.counts):
            api["Counts"] = datum.counts
    if datum.unit != "None":
        api["Unit"] = datum.unit
    if datum.resolution != 60:
        api["StorageResolution"] = datum.resolution
    return api


def _envelope_bytes(namespace: str) -> int:
    # botocore serializes with json.dumps' default separators: {"Namespace": "ns", "MetricData": [a, b]}
    return len(json.dumps({"Namespace": namespace, "MetricData": []}))


def datum_size_bound(datum: Datum) -> int:
    """An upper bound of the bytes ``datum`` adds to a request (its separator included), without serializing it."""
    text = len(datum.name) + sum(len(name) + len(value) for name, value in datum.dimensions)
    return (
        _DATUM_FIXED_BYTES
        + _ESCAPE_FACTOR * text
        + _DIMENSION_FIXED_BYTES * len(datum.dimensions)
        + _FLOAT_BYTES * 2 * len(datum.values)  # values and counts
    )


def _request_of(namespace: str, datums: list[Datum]) -> PutMetricDataRequest:
    return PutMetricDataRequest(namespace, datums, [datum_to_api(datum) for datum in datums])


def _exact_runs(datums: list[Datum], *, max_datums: int, budget: int) -> Iterable[list[Datum]]:
    """Greedy runs by exact serialized size (near the byte limit)."""
    sized = []
    for datum in datums:
        sized.append((datum, len(json.dumps(datum_to_api(datum))) + _SEPARATOR_BYTES))
    # Every datum is sized with a separator before it; the first has none, so the budget gets one back.
    for run in chunked(sized, itemgetter(1), max_bytes=budget + _SEPARATOR_BYTES, max_count=max_datums):
        yield [datum for datum, _ in run]


def pack_requests(
    datums: Iterable[Datum],
    *,
    max_datums: int = MAX_DATUMS_PER_REQUEST,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[PutMetricDataRequest]:
    """Pack datums into as few PutMetricData requests as the limits allow.

    Datums are grouped by namespace (a request has one); each request holds at most ``max_datums`` datums and its
    JSON body stays within ``max_bytes``. Values-per-datum limits are the aggregator's job.
    """
    by_namespace: dict[str, list[Datum]] = {}
    for datum in datums:
        by_namespace.setdefault(datum.namespace, []).append(datum)

    requests: list[PutMetricDataRequest] = []
    for namespace, group in by_namespace.items():
        budget = max_bytes - _envelope_bytes(namespace)
        runs: Iterable[list[Datum]] = [group[start : start + max_datums] for start in range(0, len(group), max_datums)]
        # Usually the count binds long before the bytes: then no datum needs serializing twice just to be sized.
        if any(sum(map(datum_size_bound, run)) > budget for run in runs):
            runs = _exact_runs(group, max_datums=max_datums, budget=budget)
        requests.extend(_request_of(namespace, run) for run in runs)
    return requests

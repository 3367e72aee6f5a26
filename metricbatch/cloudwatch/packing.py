"""Packing datums into PutMetricData requests: one namespace per request, <= 1,000 datums, <= 1,000,000 bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from metricbatch.aws.chunking import chunked
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.limits import MAX_DATUMS_PER_REQUEST, MAX_REQUEST_BYTES


@dataclass(slots=True)
class PutMetricDataRequest:
    """One PutMetricData call's parameters and the datums behind them."""

    namespace: str
    datums: list[Datum] = field(default_factory=list)
    metric_data: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0

    def params(self) -> dict[str, Any]:
        return {"Namespace": self.namespace, "MetricData": self.metric_data}

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


_SEPARATOR_BYTES = len(", ")
# A datum ready for a request: the datum, its API form, and its serialized size with the separator before it.
_Sized = tuple[Datum, dict[str, Any], int]


def _sized(datums: Iterable[Datum]) -> list[_Sized]:
    sized = []
    for datum in datums:
        api = datum_to_api(datum)
        sized.append((datum, api, len(json.dumps(api)) + _SEPARATOR_BYTES))
    return sized


def _request(namespace: str, envelope: int, run: list[_Sized]) -> PutMetricDataRequest:
    return PutMetricDataRequest(
        namespace=namespace,
        datums=[datum for datum, _, _ in run],
        metric_data=[api for _, api, _ in run],
        # the first datum has no separator before it
        size_bytes=envelope + sum(size for _, _, size in run) - _SEPARATOR_BYTES,
    )


def _request_of(namespace: str, datums: list[Datum]) -> PutMetricDataRequest:
    return _request(namespace, _envelope_bytes(namespace), _sized(datums))


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
        envelope = _envelope_bytes(namespace)
        # Every datum is sized with a separator before it; the first has none, so the budget gets one back.
        runs = chunked(
            _sized(group), itemgetter(2), max_bytes=max_bytes - envelope + _SEPARATOR_BYTES, max_count=max_datums
        )
        requests.extend(_request(namespace, envelope, run) for run in runs)
    return requests

"""Packing datums into PutMetricData requests: one namespace per request, <= 1,000 datums, <= 1,000,000 bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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


def _request_of(namespace: str, datums: list[Datum]) -> PutMetricDataRequest:
    request = PutMetricDataRequest(namespace=namespace, size_bytes=_envelope_bytes(namespace))
    for datum in datums:
        api = datum_to_api(datum)
        request.datums.append(datum)
        request.metric_data.append(api)
        request.size_bytes += len(json.dumps(api)) + (_SEPARATOR_BYTES if len(request.metric_data) > 1 else 0)
    return request


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
        current = PutMetricDataRequest(namespace=namespace, size_bytes=envelope)
        for datum in group:
            api = datum_to_api(datum)
            size = len(json.dumps(api))
            added = size + (_SEPARATOR_BYTES if current.metric_data else 0)
            if current.metric_data and (
                len(current.metric_data) >= max_datums or current.size_bytes + added > max_bytes
            ):
                requests.append(current)
                current = PutMetricDataRequest(namespace=namespace, size_bytes=envelope)
                added = size
            current.datums.append(datum)
            current.metric_data.append(api)
            current.size_bytes += added
        if current.metric_data:
            requests.append(current)
    return requests

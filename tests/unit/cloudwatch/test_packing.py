"""Packing datums into PutMetricData requests within CloudWatch's limits, each one acceptable to strict CloudWatch."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.cloudwatch.packing import PutMetricDataRequest, datum_size_bound, datum_to_api, pack_requests
from metricbatch.emulator.strict_cloudwatch import validate_put_metric_data

NOW = time.time()


def datum(
    name: str = "Latency",
    values: list[float] | None = None,
    counts: list[float] | None = None,
    *,
    namespace: str = "Shop",
    dimensions: tuple[tuple[str, str], ...] = (),
    unit: str = "None",
    resolution: int = 60,
) -> Datum:
    values = [1.0] if values is None else values
    counts = [1.0] * len(values) if counts is None else counts
    return Datum(namespace, name, dimensions, unit, resolution, NOW - 5, values, counts)


def wire_size(request: PutMetricDataRequest) -> int:
    return len(json.dumps(request.params()))


def assert_cloudwatch_accepts(request: PutMetricDataRequest) -> None:
    raw = json.dumps(request.params())
    validate_put_metric_data(json.loads(raw), len(raw))


def test_2500_datums_make_three_requests_of_at_most_1000() -> None:
    datums = [datum(f"M{i}") for i in range(2500)]
    requests = pack_requests(datums)
    assert [len(r.metric_data) for r in requests] == [1000, 1000, 500]
    assert [d.name for r in requests for d in r.datums] == [d.name for d in datums]
    for request in requests:
        assert_cloudwatch_accepts(request)


def test_one_namespace_per_request() -> None:
    datums = [datum(f"M{i}", namespace=f"Shop/{i % 3}") for i in range(30)]
    requests = pack_requests(datums)
    assert len(requests) == 3
    for request in requests:
        assert {d.namespace for d in request.datums} == {request.namespace}
        assert request.params()["Namespace"] == request.namespace
        assert len(request.metric_data) == 10
        assert_cloudwatch_accepts(request)


def test_bytes_bind_before_count_and_every_request_stays_under_one_megabyte() -> None:
    # GIVEN datums with 30 dimensions of maximal names and values (~40 KB each as JSON)
    dims = tuple((f"D{i:02d}" + "n" * 252, f"{i:02d}" + "v" * 1022) for i in range(30))
    datums = [datum(f"M{i}", [float(v) for v in range(150)], dimensions=dims) for i in range(100)]
    assert len(json.dumps(datum_to_api(datums[0]))) > 38_000
    # WHEN packed
    requests = pack_requests(datums)
    # THEN every request is at most 1,000,000 bytes as botocore serializes it, and the size estimate is exact
    assert len(requests) > 1
    for request in requests:
        assert wire_size(request) <= 1_000_000
        assert request.size_bytes == wire_size(request)
        assert len(request.metric_data) < 1000
        assert_cloudwatch_accepts(request)
    # AND requests are full: the next datum would not have fitted
    for request, following in itertools.pairwise(requests):
        assert request.size_bytes + 2 + len(json.dumps(following.metric_data[0])) > 1_000_000
    # AND nothing was lost or duplicated
    assert [d.name for r in requests for d in r.datums] == [d.name for d in datums]


def test_custom_limits_are_honoured() -> None:
    datums = [datum(f"M{i}") for i in range(10)]
    assert [len(r.datums) for r in pack_requests(datums, max_datums=4)] == [4, 4, 2]
    one_datum_bytes = len(json.dumps(pack_requests(datums[:1])[0].params()))
    by_bytes = pack_requests(datums, max_bytes=one_datum_bytes + 10)
    assert [len(r.datums) for r in by_bytes] == [1] * 10
    assert pack_requests([]) == []


def test_datum_shapes_value_values_and_counts() -> None:
    single = datum_to_api(datum("A", [2.5], unit="Milliseconds", dimensions=(("Host", "a"),)))
    assert single == {
        "MetricName": "A",
        "Dimensions": [{"Name": "Host", "Value": "a"}],
        "Timestamp": int(NOW - 5),
        "Value": 2.5,
        "Unit": "Milliseconds",
    }
    many = datum_to_api(datum("B", [1.0, 2.0]))
    assert (many["Values"], "Counts" in many, "Value" in many) == ([1.0, 2.0], False, False)
    counted = datum_to_api(datum("C", [1.0, 2.0], [3.0, 1.0], resolution=1))
    assert (counted["Values"], counted["Counts"], counted["StorageResolution"]) == ([1.0, 2.0], [3.0, 1.0], 1)
    repeated = datum_to_api(datum("D", [7.0], [4.0]))
    assert (repeated["Values"], repeated["Counts"], "Value" in repeated) == ([7.0], [4.0], False)
    assert "Unit" not in many and "Dimensions" not in many and "StorageResolution" not in many
    request = pack_requests([datum("A", [2.5]), datum("B", [1.0, 2.0]), datum("C", [1.0, 2.0], [3.0, 1.0])])[0]
    assert_cloudwatch_accepts(request)


def test_split_halves_a_request_keeping_sizes_exact() -> None:
    (request,) = pack_requests([datum(f"M{i}", [float(i)]) for i in range(7)])
    first, second = request.split()
    assert [d.name for d in first.datums + second.datums] == [f"M{i}" for i in range(7)]
    assert (len(first.datums), len(second.datums)) == (3, 4)
    for half in (first, second):
        assert half.namespace == "Shop"
        assert half.size_bytes == wire_size(half)
        assert_cloudwatch_accepts(half)


@pytest.mark.parametrize("count", [1, 999, 1000, 1001])
def test_count_boundaries(count: int) -> None:
    requests = pack_requests([datum(f"M{i}") for i in range(count)])
    assert sum(len(r.datums) for r in requests) == count
    assert len(requests) == (count + 999) // 1000
    for request in requests:
        assert_cloudwatch_accepts(request)


def test_the_size_bound_is_never_below_the_serialized_size() -> None:
    # Requests far from the byte limit are packed by this bound, without serializing each datum to size it.
    worst_float = -2.2250738585072014e-308  # the longest repr a float has
    worst_text = '"\\' * 127 + "x"  # every character escaped in JSON
    dims = tuple((f'{i:02d}"' + "\\" * 120, '"' * 1024) for i in range(30))
    shapes = [
        datum("A"),
        datum(
            worst_text, [worst_float] * 150, [worst_float] * 150, dimensions=dims, unit="Terabytes/Second", resolution=1
        ),
        datum("B", [float(i) for i in range(150)], [1.0] * 150, unit="Count/Second"),
        datum("C", [1e300], [3.0], dimensions=(("K", "v"),)),
    ]
    for shape in shapes:
        assert datum_size_bound(shape) >= len(json.dumps(datum_to_api(shape))) + len(", ")


def test_far_from_the_byte_limit_only_the_count_splits() -> None:
    datums = [datum(f"M{i}", [float(i), float(i + 1)], [1.0, 2.0]) for i in range(2500)]
    requests = pack_requests(datums)
    assert [len(r.datums) for r in requests] == [1000, 1000, 500]
    assert all(r.size_bytes <= 1_000_000 for r in requests)

"""Wire format v1: envelope parsing (size, JSON, nesting, shape) and per-metric parsing with its defaults."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from metricbatch import InvalidMetricError, WireFormatError
from metricbatch.validation import Series
from metricbatch.wire import datum_to_wire, envelope_of, metric_fragment, metric_prefix, parse_envelope, parse_metric

NOW = 1_795_694_400.0
SENT = NOW - 30.0


def envelope_error(body: str | bytes) -> WireFormatError:
    with pytest.raises(WireFormatError) as info:
        parse_envelope(body)
    assert isinstance(info.value, ValueError)
    assert f"[rule: {info.value.rule}]" in str(info.value)
    return info.value


def metric_error(raw: Any) -> InvalidMetricError:
    with pytest.raises(InvalidMetricError) as info:
        parse_metric(raw, SENT, NOW)
    return info.value


def test_valid_envelope_is_returned_as_is() -> None:
    body = {
        "v": 1,
        "metrics": [
            {"namespace": "Shop/Checkout", "name": "Latency", "value": 12.5, "unit": "Milliseconds"},
            {"namespace": "Shop/Checkout", "name": "Latency", "values": [10, 20], "counts": [3, 1]},
        ],
    }
    assert parse_envelope(json.dumps(body)) == body
    assert parse_envelope(json.dumps(body).encode()) == body
    assert parse_envelope(json.dumps({**body, "attempt": 3}))["attempt"] == 3


@pytest.mark.parametrize("version", [2, 0, "1", None, True, [1]])
def test_unknown_versions_are_rejected(version: Any) -> None:
    assert envelope_error(json.dumps({"v": version, "metrics": []})).rule == "envelope.version"


def test_missing_version_is_rejected() -> None:
    assert envelope_error(json.dumps({"metrics": []})).rule == "envelope.version"


@pytest.mark.parametrize("body", ["not json", "{", "", '{"v": 1, "metrics": [}', b"\xff\xfe{"])
def test_non_json_bodies_are_rejected(body: str | bytes) -> None:
    assert envelope_error(body).rule == "body.json"


def test_bodies_over_one_mib_are_rejected_before_parsing() -> None:
    padding = "x" * (1024 * 1024)
    error = envelope_error(json.dumps({"v": 1, "metrics": [], "pad": padding}))
    assert error.rule == "body.size"
    # a body exactly at the limit is parsed (and here fails only for what it is, not its size)
    at_limit = "[" + " " * (1024 * 1024 - 2) + "]"
    assert envelope_error(at_limit).rule == "envelope.type"


def test_multibyte_characters_count_as_bytes() -> None:
    body = json.dumps({"v": 1, "metrics": [], "pad": "é" * 600_000}, ensure_ascii=False)
    assert len(body) < 1024 * 1024 < len(body.encode())
    assert envelope_error(body).rule == "body.size"


@pytest.mark.parametrize("body", ["[" * 100_000, '{"a":' * 100_000])
def test_deep_nesting_is_rejected_without_crashing(body: str) -> None:
    assert envelope_error(body).rule == "body.nesting"


@pytest.mark.parametrize("body", ["[]", "1", '"text"', "null", "[{}]"])
def test_non_object_bodies_are_rejected(body: str) -> None:
    assert envelope_error(body).rule == "envelope.type"


@pytest.mark.parametrize("metrics", [None, {}, "m", 1])
def test_metrics_must_be_a_list(metrics: Any) -> None:
    assert envelope_error(json.dumps({"v": 1, "metrics": metrics})).rule == "envelope.metrics"
    assert envelope_error(json.dumps({"v": 1})).rule == "envelope.metrics"


@pytest.mark.parametrize("attempt", [-1, 1.5, "2", True, None])
def test_bad_attempt_is_rejected(attempt: Any) -> None:
    assert envelope_error(json.dumps({"v": 1, "metrics": [], "attempt": attempt})).rule == "envelope.attempt"


# -- metrics -------------------------------------------------------------------------------------------------------
def test_parse_metric_applies_defaults() -> None:
    metric = parse_metric({"namespace": "Shop", "name": "Latency", "value": 3}, SENT, NOW)
    assert metric.series.unit == "None"
    assert metric.series.resolution == 60
    assert metric.timestamp == SENT
    assert metric.series.dimensions == ()
    assert metric.values == [3.0]
    assert metric.counts is None


def test_parse_metric_keeps_every_given_field() -> None:
    raw = {
        "namespace": "Shop",
        "name": "Latency",
        "values": [1, 2.5],
        "counts": [4, 1],
        "unit": "Milliseconds",
        "dimensions": {"Service": "cart", "Az": "a"},
        "timestamp": datetime.fromtimestamp(NOW - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resolution": 1,
    }
    metric = parse_metric(raw, SENT, NOW)
    assert (metric.series.namespace, metric.series.name, metric.series.unit, metric.series.resolution) == (
        "Shop",
        "Latency",
        "Milliseconds",
        1,
    )
    assert metric.series.dimensions == (("Az", "a"), ("Service", "cart"))
    assert metric.values == [1.0, 2.5]
    assert metric.counts == [4.0, 1.0]
    assert metric.timestamp == NOW - 60


def test_values_without_counts_count_one_each() -> None:
    metric = parse_metric({"namespace": "Shop", "name": "L", "values": [1, 2]}, SENT, NOW)
    assert metric.counts == [1.0, 1.0]


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ({"namespace": "Shop", "name": "L"}, "value.missing"),
        ({"namespace": "Shop", "name": "L", "value": 1, "values": [1]}, "value.missing"),
        ({"namespace": "Shop", "name": "L", "value": 1, "counts": [1]}, "counts.without_values"),
        ({"namespace": "Shop", "name": "L", "values": [1, 2], "counts": [1]}, "counts.length"),
        ({"namespace": "Shop", "name": "L", "values": [1], "counts": [1, 1]}, "counts.length"),
        ({"namespace": "Shop", "name": "L", "values": [1], "counts": [-1]}, "counts.negative"),
        ({"namespace": "Shop", "name": "L", "values": []}, "values.type"),
        ({"namespace": "Shop", "name": "L", "values": list(range(151))}, "values.count"),
        ({"namespace": "Shop", "name": "L", "value": 1, "Value": 1}, "metric.fields"),
        ({"namespace": "Shop", "name": "L", "value": 1, "dims": {}}, "metric.fields"),
        ({"name": "L", "value": 1}, "namespace.type"),
        ({"namespace": "AWS/EC2", "name": "L", "value": 1}, "namespace.reserved"),
        ({"namespace": "Shop", "value": 1}, "name.type"),
        ({"namespace": "Shop", "name": "L", "value": math.nan}, "value.finite"),
        ({"namespace": "Shop", "name": "L", "value": "1"}, "value.type"),
        ({"namespace": "Shop", "name": "L", "value": 1, "unit": "ms"}, "unit.unknown"),
        ({"namespace": "Shop", "name": "L", "value": 1, "resolution": 5}, "resolution.value"),
        ({"namespace": "Shop", "name": "L", "value": 1, "timestamp": NOW - 15 * 86400}, "timestamp.too_old"),
        ({"namespace": "Shop", "name": "L", "value": 1, "timestamp": "soon"}, "timestamp.format"),
        ({"namespace": "Shop", "name": "L", "value": 1, "dimensions": {"K": 1}}, "dimension_value.type"),
        (["Shop", "L", 1], "metric.type"),
        ("metric", "metric.type"),
    ],
)
def test_bad_metrics_are_rejected_naming_the_rule(raw: Any, rule: str) -> None:
    assert metric_error(raw).rule == rule


def test_an_old_default_timestamp_is_rejected_too() -> None:
    # GIVEN a message that sat in the queue for 15 days (SentTimestamp is the default timestamp)
    with pytest.raises(InvalidMetricError) as info:
        parse_metric({"namespace": "Shop", "name": "L", "value": 1}, NOW - 15 * 86400, NOW)
    assert info.value.rule == "timestamp.too_old"


# -- producing the wire format -------------------------------------------------------------------------------------
def test_fragments_and_envelopes_round_trip_through_the_parser() -> None:
    prefix = metric_prefix("Shop", "Latency", (("Az", 'a"b'), ("Service", "cart")), "Milliseconds", 1)
    fragments = [metric_fragment(prefix, 1.5, NOW - 1.25), metric_fragment(prefix, 1e100, NOW)]
    for attempt in (0, 2):
        envelope = parse_envelope(envelope_of(fragments, attempt=attempt))
        assert envelope.get("attempt", 0) == attempt
        parsed = [parse_metric(raw, SENT, NOW) for raw in envelope["metrics"]]
        assert [p.values for p in parsed] == [[1.5], [1e100]]
        assert [p.timestamp for p in parsed] == [NOW - 1.25, NOW]
        assert parsed[0].series.dimensions == (("Az", 'a"b'), ("Service", "cart"))
        assert (parsed[0].series.unit, parsed[0].series.resolution) == ("Milliseconds", 1)


def test_datum_to_wire_round_trips() -> None:
    wire = datum_to_wire(Series("Shop", "L", (("K", "V"),), "Count", 60), NOW, [1.0, 2.0], [3.0, 1.0])
    parsed = parse_metric(json.loads(json.dumps(wire)), SENT, NOW)
    assert (parsed.values, parsed.counts, parsed.series.unit) == ([1.0, 2.0], [3.0, 1.0], "Count")
    assert parsed.series.dimensions == (("K", "V"),)
    assert "resolution" not in wire

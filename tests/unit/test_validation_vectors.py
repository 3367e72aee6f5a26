"""The shared validation vectors (tests/vectors/validation.json) through the Python producer.

The Node producer runs the same file (clients/node/test/vectors.test.ts), so the two cannot drift apart: each case
is one send_metric call that must be rejected with the given rule, or must arrive on the wire as given.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from metricbatch import InvalidMetricError

from .conftest import QUEUE_URL, ProducerFactory
from .fakes import FakeSqs

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "validation.json").read_text())
CASES = VECTORS["cases"]
REJECTED = [case for case in CASES if "rule" in case]
ACCEPTED = [case for case in CASES if "accepted" in case]
ZONES = {"Z": UTC, "+00:00": UTC, "+05:30": timezone(timedelta(hours=5, minutes=30)), "": None}


def decode(value: Any, now: float) -> Any:
    """A vector's value as Python takes it (see the file's "encoding" section)."""
    if isinstance(value, list):
        return [decode(v, now) for v in value]
    if not isinstance(value, dict):
        return value
    if "$number" in value:
        return float(value["$number"].lower().replace("infinity", "inf"))
    if "$int" in value:
        return int(value["$int"])
    if "$repeat" in value:
        return value["$repeat"] * value["times"]
    if "$count" in value:
        return {f"D{i}": "v" for i in range(value["$count"])}
    if "$pairs" in value:
        return {decode(k, now): decode(v, now) for k, v in value["$pairs"]}
    if "$now_plus" in value:
        return now + value["$now_plus"]
    if "$date_now_plus" in value:
        return datetime.fromtimestamp(now + value["$date_now_plus"], UTC)
    if "$iso_now_plus" in value:
        zone = ZONES[value["zone"]]
        moment = datetime.fromtimestamp(now + value["$iso_now_plus"], zone or UTC)
        text = moment.replace(tzinfo=None).isoformat() if zone is None else moment.isoformat()
        return text.replace("+00:00", "Z") if value["zone"] == "Z" else text
    return {k: decode(v, now) for k, v in value.items()}


def call(producer: Any, vector: dict[str, Any], now: float) -> None:
    raw = vector["call"]
    kwargs: dict[str, Any] = {}
    for key, option in (("namespace", "namespace"), ("unit", "unit"), ("dimensions", "dimensions"),
                        ("timestamp", "timestamp"), ("resolution", "storage_resolution")):  # fmt: skip
        if key in raw:
            kwargs[option] = decode(raw[key], now)
    producer.send_metric(decode(raw["name"], now), decode(raw["value"], now), **kwargs)


def test_every_rule_of_the_python_producer_has_a_vector() -> None:
    rules = {case["rule"] for case in REJECTED}
    for kind in ("name", "namespace", "dimension_name", "dimension_value"):
        assert {f"{kind}.empty", f"{kind}.length", f"{kind}.ascii"} <= rules
    assert {"namespace.colon", "namespace.reserved", "dimension_name.colon"} <= rules
    assert {"dimensions.type", "dimensions.count", "value.type", "value.finite", "value.range"} <= rules
    assert {"unit.unknown", "resolution.value", "timestamp.type", "timestamp.format"} <= rules
    assert {"timestamp.too_old", "timestamp.too_new"} <= rules


@pytest.mark.parametrize("vector", REJECTED, ids=[case["id"] for case in REJECTED])
def test_rejected_vectors(make_producer: ProducerFactory, fake_sqs: FakeSqs, vector: dict[str, Any]) -> None:
    # GIVEN a producer with no default namespace
    producer = make_producer(namespace=None)
    # WHEN the vector's call is made THEN it raises the vector's rule, and nothing reaches the queue
    with pytest.raises(InvalidMetricError) as info:
        call(producer, vector, time.time())
    assert info.value.rule == vector["rule"], str(info.value)
    assert f"[rule: {vector['rule']}]" in str(info.value)
    assert producer.flush(timeout=5)
    assert fake_sqs.metrics(QUEUE_URL) == []
    assert producer.stats()["invalid"] == 1


@pytest.mark.parametrize("vector", ACCEPTED, ids=[case["id"] for case in ACCEPTED])
def test_accepted_vectors(make_producer: ProducerFactory, fake_sqs: FakeSqs, vector: dict[str, Any]) -> None:
    # GIVEN a producer with no default namespace
    producer = make_producer(namespace=None)
    now = time.time()
    # WHEN the vector's call is made and flushed
    call(producer, vector, now)
    assert producer.flush(timeout=5)
    # THEN exactly one wire metric arrives, normalized as the vector says
    [metric] = fake_sqs.metrics(QUEUE_URL)
    expected = decode(vector["accepted"], now)
    assert metric["namespace"] == expected["namespace"]
    assert metric["name"] == expected["name"]
    assert metric.get("unit", "None") == expected["unit"]
    assert metric.get("resolution", 60) == expected["resolution"]
    assert metric.get("dimensions", {}) == expected["dimensions"]
    values = metric["values"] if "values" in metric else [metric["value"]]
    assert metric.get("counts", [1]) == [1]
    assert values == [expected["value"]]
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)
    if "timestamp" in expected:
        resolution = expected["resolution"]
        bucket = math.floor(expected["timestamp"] / resolution) * resolution
        assert bucket - 1 <= metric["timestamp"] <= expected["timestamp"] + 1

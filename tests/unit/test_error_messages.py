"""Errors that point at the fix: the offending dimension's key, the unit that was meant, the variable to set."""

from __future__ import annotations

from typing import Any

import pytest

from metricbatch.exceptions import InvalidMetricError
from metricbatch.validation import check_dimensions, check_unit

from .conftest import ProducerFactory


@pytest.mark.parametrize(
    ("value", "rule"),
    [("", "dimension_value.empty"), ("   ", "dimension_value.empty"), ("caf\u00e9", "dimension_value.ascii"),
     (5, "dimension_value.type"), ("x" * 1025, "dimension_value.length")],
)  # fmt: skip
def test_a_bad_dimension_value_names_its_key(value: Any, rule: str) -> None:
    with pytest.raises(InvalidMetricError) as info:
        check_dimensions({"Service": "cart", "Env": value})
    assert info.value.rule == rule
    assert "'Env'" in str(info.value)
    assert "'Service'" not in str(info.value)


@pytest.mark.parametrize(
    ("unit", "meant"),
    [("Milisecond", "Milliseconds"), ("milliseconds", "Milliseconds"), ("Second", "Seconds"),
     ("Percentage", "Percent"), ("count", "Count"), ("Byte/Second", "Bytes/Second")],
)  # fmt: skip
def test_a_misspelt_unit_is_rejected_with_the_close_match(unit: str, meant: str) -> None:
    # The suggestion is only a hint: the misspelling is never accepted in its place.
    with pytest.raises(InvalidMetricError) as info:
        check_unit(unit)
    assert info.value.rule == "unit.unknown"
    assert f"did you mean {meant!r}?" in str(info.value)


@pytest.mark.parametrize("unit", ["Parsecs", "ms", "Kb", ["Seconds"], None])
def test_a_unit_with_no_close_match_lists_the_accepted_units(unit: Any) -> None:
    with pytest.raises(InvalidMetricError) as info:
        check_unit(unit)
    assert "did you mean" not in str(info.value)
    assert "Milliseconds" in str(info.value) and "Count/Second" in str(info.value)


def test_a_missing_namespace_names_the_variable_that_sets_it(
    make_producer: ProducerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    from metricbatch.producer import modes

    modes._announced.clear()
    producer = make_producer(namespace=None)
    with caplog.at_level("WARNING", logger="metricbatch"):
        producer.send_metric("Latency", 1.0)
        producer.send_metric("Latency", 2.0)
    lines = [r.getMessage() for r in caplog.records if "METRICBATCH_NAMESPACE" in r.getMessage()]
    assert len(lines) == 1 and "metricbatch/default" in lines[0]

"""Every CloudWatch rule in metricbatch.validation: rejected just past the limit, accepted at it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from metricbatch import InvalidMetricError, MetricBatchError
from metricbatch.limits import MIN_ABS_VALUE, UNITS
from metricbatch.validation import (
    check_dimensions,
    check_name,
    check_namespace,
    check_resolution,
    check_timestamp,
    check_unit,
    check_value,
    check_values,
    to_epoch,
)

NOW = 1_795_694_400.0  # a fixed "now" so boundaries are exact
DAY = 86_400.0


def rejects(check: Callable[..., Any], *args: Any, rule: str) -> InvalidMetricError:
    with pytest.raises(InvalidMetricError) as info:
        check(*args)
    assert info.value.rule == rule
    assert f"[rule: {rule}]" in str(info.value)
    return info.value


def test_invalid_metric_error_is_a_value_error_naming_rule_and_value() -> None:
    error = rejects(check_value, math.inf, rule="value.finite")
    assert isinstance(error, ValueError)
    assert isinstance(error, MetricBatchError)
    assert "inf" in str(error)


# -- values --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_rejected(value: float) -> None:
    rejects(check_value, value, rule="value.finite")


@pytest.mark.parametrize("value", [2.0**360 * 1.0000001, -(2.0**360) * 1.0000001, 2**361, -(2**361), 10**400, 1e308])
def test_values_beyond_2_to_the_360_are_rejected(value: float) -> None:
    rejects(check_value, value, rule="value.range")


@pytest.mark.parametrize(
    "value", [2.0**360, -(2.0**360), 2**360, 0, 0.0, -0.0, -1, 12.5, 2.0**-360, -(2.0**-360), 1e-100, -1e-100]
)
def test_values_within_2_to_the_360_are_accepted(value: float) -> None:
    assert check_value(value) == float(value)
    assert type(check_value(value)) is float


@pytest.mark.parametrize("value", [2.0**-361, -(2.0**-361), 1e-109, 1e-130, 1e-200, 1e-300, 5e-324, -5e-324])
def test_non_zero_values_closer_to_zero_than_2_to_the_minus_360_are_rounded_to_zero(value: float) -> None:
    # CloudWatch answers InvalidParameterValue for them; every statistic reads them as 0 anyway.
    assert 0.0 < abs(value) < MIN_ABS_VALUE
    assert check_value(value) == 0.0
    assert type(check_value(value)) is float


def test_tiny_values_and_counts_in_values_lists_are_rounded_to_zero() -> None:
    assert check_values([1.0, 1e-200, -5e-324], [2.0, 1.0, 3.0]) == ([1.0, 0.0, 0.0], [2.0, 1.0, 3.0])
    assert check_values([1.0, 2.0], [1e-200, 1.0]) == ([1.0, 2.0], [0.0, 1.0])


@pytest.mark.parametrize("value", ["1", None, [1.0], {"v": 1}, b"1", True, False])
def test_non_numeric_and_bool_values_are_rejected(value: Any) -> None:
    rejects(check_value, value, rule="value.type")


def test_values_and_counts() -> None:
    assert check_values([1, 2.5], None) == ([1.0, 2.5], [1.0, 1.0])
    assert check_values([1, 2], [3, 4]) == ([1.0, 2.0], [3.0, 4.0])
    rejects(check_values, [], None, rule="values.type")
    rejects(check_values, list(range(151)), None, rule="values.count")
    assert len(check_values(list(range(150)), None)[0]) == 150
    rejects(check_values, [1, 2], [1], rule="counts.length")
    rejects(check_values, [1, 2], [1, -1], rule="counts.negative")
    rejects(check_values, [1, math.nan], None, rule="value.finite")


def test_counts_that_carry_no_sample_are_rejected() -> None:
    rejects(check_values, [1, 2], [0, 0], rule="counts.zero")
    rejects(check_values, [1, 2], [5e-324, 1e-300], rule="counts.zero")  # tiny counts are 0
    assert check_values([1, 2], [0, 2.0**-360]) == ([1.0, 2.0], [0.0, 2.0**-360])


# -- names and namespaces ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "name.empty"),
        ("   ", "name.empty"),
        ("\t", "name.empty"),
        ("x" * 256, "name.length"),
        ("Latenz-ä", "name.ascii"),
        ("Lat\u00a0ency", "name.ascii"),
        ("a\x00b", "name.ascii"),
        ("a\nb", "name.ascii"),
        ("a\x7fb", "name.ascii"),
        (None, "name.type"),
        (12, "name.type"),
    ],
)
def test_bad_metric_names_are_rejected(name: Any, rule: str) -> None:
    rejects(check_name, name, rule=rule)


@pytest.mark.parametrize("name", ["x", "x" * 255, "Latency p99 (ms)", "a:b/c~!"])
def test_good_metric_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("namespace", "rule"),
    [
        ("AWS/EC2", "namespace.reserved"),
        ("AWS/", "namespace.reserved"),
        (":Shop", "namespace.colon"),
        ("", "namespace.empty"),
        (" ", "namespace.empty"),
        ("n" * 256, "namespace.length"),
        ("Shöp", "namespace.ascii"),
        ("Shop\r", "namespace.ascii"),
    ],
)
def test_bad_namespaces_are_rejected(namespace: str, rule: str) -> None:
    rejects(check_namespace, namespace, rule=rule)


@pytest.mark.parametrize("namespace", ["Shop/Checkout", "n" * 255, "AWSome", "aws/lower", "Shop:AWS/"])
def test_good_namespaces_are_accepted(namespace: str) -> None:
    assert check_namespace(namespace) == namespace


# -- dimensions ----------------------------------------------------------------------------------------------------
def test_thirty_dimensions_are_accepted_and_sorted() -> None:
    dims = {f"D{i:02d}": str(i) for i in reversed(range(30))}
    checked = check_dimensions(dims)
    assert len(checked) == 30
    assert [n for n, _ in checked] == sorted(dims)


def test_thirty_one_dimensions_are_rejected() -> None:
    rejects(check_dimensions, {f"D{i}": "v" for i in range(31)}, rule="dimensions.count")


@pytest.mark.parametrize(
    ("dimensions", "rule"),
    [
        ({"": "v"}, "dimension_name.empty"),
        ({" ": "v"}, "dimension_name.empty"),
        ({"n" * 256: "v"}, "dimension_name.length"),
        ({":Host": "v"}, "dimension_name.colon"),
        ({"Hôst": "v"}, "dimension_name.ascii"),
        ({1: "v"}, "dimension_name.type"),
        ({"Host": ""}, "dimension_value.empty"),
        ({"Host": "v" * 1025}, "dimension_value.length"),
        ({"Host": "naïve"}, "dimension_value.ascii"),
        ({"Host": "a\x01"}, "dimension_value.ascii"),
        ({"Host": 1}, "dimension_value.type"),
        ({"Host": None}, "dimension_value.type"),
        ([("Host", "a")], "dimensions.type"),
        ("Host=a", "dimensions.type"),
    ],
)
def test_bad_dimensions_are_rejected(dimensions: Any, rule: str) -> None:
    rejects(check_dimensions, dimensions, rule=rule)


def test_dimension_limits_are_inclusive() -> None:
    assert check_dimensions({"n" * 255: "v" * 1024}) == (("n" * 255, "v" * 1024),)
    assert check_dimensions({"Host:Port": "a:b"}) == (("Host:Port", "a:b"),)
    assert check_dimensions(None) == ()
    assert check_dimensions({}) == ()


# -- unit and resolution -------------------------------------------------------------------------------------------
def test_all_27_cloudwatch_units_are_accepted() -> None:
    assert len(UNITS) == 27
    for unit in UNITS:
        assert check_unit(unit) == unit


@pytest.mark.parametrize("unit", ["milliseconds", "ms", "Millisecond", "", None, "Count/Minute", "Bytes/Sec"])
def test_unknown_units_are_rejected(unit: Any) -> None:
    rejects(check_unit, unit, rule="unit.unknown")


@pytest.mark.parametrize("resolution", [1, 60])
def test_resolutions_1_and_60_are_accepted(resolution: int) -> None:
    assert check_resolution(resolution) == resolution


@pytest.mark.parametrize("resolution", [0, 5, 30, 59, 61, 120, True, "60", None])
def test_other_resolutions_are_rejected(resolution: Any) -> None:
    rejects(check_resolution, resolution, rule="resolution.value")


# -- timestamps ----------------------------------------------------------------------------------------------------
def test_timestamp_exactly_14_days_old_is_accepted_and_older_rejected() -> None:
    assert check_timestamp(NOW - 14 * DAY, NOW) == NOW - 14 * DAY
    rejects(check_timestamp, NOW - 14 * DAY - 0.001, NOW, rule="timestamp.too_old")
    rejects(check_timestamp, NOW - 30 * DAY, NOW, rule="timestamp.too_old")


def test_timestamp_exactly_2_hours_ahead_is_accepted_and_later_rejected() -> None:
    assert check_timestamp(NOW + 2 * 3600, NOW) == NOW + 2 * 3600
    rejects(check_timestamp, NOW + 2 * 3600 + 0.001, NOW, rule="timestamp.too_new")
    rejects(check_timestamp, NOW + DAY, NOW, rule="timestamp.too_new")


def test_timestamp_defaults_to_the_real_clock() -> None:
    assert check_timestamp(time.time() - 60) > 0
    rejects(check_timestamp, time.time() - 15 * DAY, rule="timestamp.too_old")


def test_aware_datetimes_are_converted_to_epoch() -> None:
    stamp = datetime(2026, 11, 27, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_epoch(stamp) == datetime(2026, 11, 27, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def local_timezone_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Without this a machine on UTC could not tell "naive = UTC" from "naive = local time".
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_timezone_far_from_utc")
def test_naive_datetime_is_treated_as_utc() -> None:
    # GIVEN a machine whose local time is UTC+05:30
    assert time.localtime(0).tm_gmtoff == 19_800
    # WHEN a naive datetime is converted THEN it is read as UTC, not local time
    naive = datetime(2026, 11, 27, 10, 0)
    assert to_epoch(naive) == datetime(2026, 11, 27, 10, 0, tzinfo=UTC).timestamp()
    # and the boundary check uses that reading: 10:00 naive is exactly 2 h ahead of 08:00 UTC
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp()
    assert check_timestamp(naive, now) == now + 7200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00+00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T12:00:00.500+02:00", datetime(2026, 11, 27, 10, 0, 0, 500_000, tzinfo=UTC)),
        ("2026-11-27T10:00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_iso_8601_strings_are_parsed(text: str, expected: datetime) -> None:
    assert to_epoch(text) == expected.timestamp()


@pytest.mark.parametrize(
    ("timestamp", "rule"),
    [
        ("yesterday", "timestamp.format"),
        ("", "timestamp.format"),
        (True, "timestamp.type"),
        (math.nan, "timestamp.type"),
        (math.inf, "timestamp.type"),
        (None, "timestamp.type"),
        ([1.0], "timestamp.type"),
    ],
)
def test_bad_timestamps_are_rejected(timestamp: Any, rule: str) -> None:
    rejects(check_timestamp, timestamp, NOW, rule=rule)


def test_epoch_numbers_pass_through() -> None:
    assert to_epoch(NOW) == NOW
    assert to_epoch(int(NOW)) == NOW

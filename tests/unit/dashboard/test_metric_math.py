"""The local metric-math subset, each function against values worked by hand (NaN = no datapoint)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from metricbatch.dashboard.metric_math import MetricMathError, Value, evaluate, ids_used

NAN = math.nan
SERIES: dict[str, list[float]] = {
    "a": [1.0, NAN, 3.0, 4.0],
    "b": [2.0, 5.0, NAN, 0.0],
    "c": [NAN, NAN, NAN, NAN],
}


def _eval(expression: str) -> Value:
    return evaluate(expression, lambda name: np.array(SERIES[name]), points=4)


def _same(value: Value, expected: list[float]) -> bool:
    assert isinstance(value, np.ndarray)
    return bool(np.allclose(value, np.array(expected), rtol=1e-12, atol=0.0, equal_nan=True))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # a timestamp where either side has no datapoint has none in the result
        ("a + b", [3.0, NAN, NAN, 4.0]),
        ("a - b", [-1.0, NAN, NAN, 4.0]),
        ("a * b", [2.0, NAN, NAN, 0.0]),
        # 4 / 0: no datapoint, never infinity or zero
        ("a / b", [0.5, NAN, NAN, NAN]),
        ("a ^ 2", [1.0, NAN, 9.0, 16.0]),
        ("-a", [-1.0, NAN, -3.0, -4.0]),
        # precedence: * before +, ^ before unary minus, parentheses first
        ("1 + a * 2", [3.0, NAN, 7.0, 9.0]),
        ("(1 + a) * 2", [4.0, NAN, 8.0, 10.0]),
        ("-a ^ 2", [-1.0, NAN, -9.0, -16.0]),
        ("a * 0.00001", [0.00001, NAN, 0.00003, 0.00004]),
        ("2 * 3 + a", [7.0, NAN, 9.0, 10.0]),
    ],
)
def test_arithmetic(expression: str, expected: list[float]) -> None:
    assert _same(_eval(expression), expected)


def test_fill_puts_the_number_where_there_is_no_datapoint() -> None:
    assert _same(_eval("FILL(a, 0)"), [1.0, 0.0, 3.0, 4.0])
    assert _same(_eval("FILL(c, 7)"), [7.0, 7.0, 7.0, 7.0])
    # the dashboard's saved calls: FILL(published, 0) - FILL(calls, 0)
    assert _same(_eval("FILL(a, 0) - FILL(b, 0)"), [-1.0, -5.0, 3.0, 4.0])


def test_comparisons_and_logic_give_one_or_zero() -> None:
    assert _same(_eval("a > 2"), [0.0, NAN, 1.0, 1.0])
    assert _same(_eval("a >= 3"), [0.0, NAN, 1.0, 1.0])
    assert _same(_eval("a < b"), [1.0, NAN, NAN, 0.0])
    assert _same(_eval("a == 1"), [1.0, NAN, 0.0, 0.0])
    assert _same(_eval("a != 1"), [0.0, NAN, 1.0, 1.0])
    assert _same(_eval("a > 0 AND b > 0"), [1.0, NAN, NAN, 0.0])
    assert _same(_eval("a > 2 || b > 1"), [1.0, NAN, NAN, 1.0])


def test_if_picks_per_timestamp_and_does_not_divide_by_zero() -> None:
    # the dashboard's percentage: IF(FILL(p, 0) > 0, 100 * (FILL(p, 0) - FILL(c, 0)) / FILL(p, 0), 0)
    percent = _eval("IF(FILL(b, 0) > 0, 100 * (FILL(b, 0) - FILL(a, 0)) / FILL(b, 0), 0)")
    # b = 2, 5, (none: 0), 0 and a = 1, (none: 0), 3, 4 -> 50%, 100%, 0 (else branch), 0 (else branch)
    assert _same(percent, [50.0, 100.0, 0.0, 0.0])
    assert _same(_eval("IF(a > 2, a)"), [NAN, NAN, 3.0, 4.0])
    assert _same(_eval("IF(a > 2, 1, -1)"), [-1.0, NAN, 1.0, 1.0])


def test_sum_of_an_array_per_timestamp_and_of_a_series_as_one_number() -> None:
    assert _same(_eval("SUM([a, b])"), [3.0, 5.0, 3.0, 4.0])
    assert _same(_eval("SUM([a, c])"), [1.0, NAN, 3.0, 4.0])
    assert _same(_eval("SUM([c, c])"), [NAN, NAN, NAN, NAN])
    assert _eval("SUM(a)") == 8.0
    assert _eval("SUM(a) / 2") == 4.0


def test_numbers_alone_stay_numbers() -> None:
    assert _eval("(1 + 2) * 0.5") == 1.5
    assert _eval("1e-6 * 4") == pytest.approx(4e-6)
    assert math.isnan(float(_eval("1 / 0")))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("RATE(a)", "function RATE"),
        ("FILL(a, REPEAT)", "REPEAT in 'FILL(a, REPEAT)' is outside the local subset"),
        ("FILL(a, LINEAR)", "LINEAR in 'FILL(a, LINEAR)' is outside the local subset"),
        ("FILL(a, b)", "FILL takes a series and a number"),
        ("METRICS()", "function METRICS"),
        ("a +", "unexpected 'the end'"),
        ("(a + b", "expected ')'"),
        ("a $ b", "cannot read '$ b'"),
        ("a b", "unexpected 'b'"),
        ("IF(a)", "IF takes 2 or 3"),
        ("PERIOD", "outside the local subset"),
    ],
)
def test_anything_outside_the_subset_is_a_clear_error(expression: str, message: str) -> None:
    with pytest.raises(MetricMathError, match=re.escape(message)):
        _eval(expression)


def test_ids_used_lists_ids_not_functions() -> None:
    assert ids_used("IF(FILL(published, 0) > 0, 100 * calls / published, 0)") == {"published", "calls"}
    assert ids_used("(FILL(sent, 0) + FILL(dlqsent, 0)) * 0.0000004") == {"sent", "dlqsent"}

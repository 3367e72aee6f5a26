"""The subset of CloudWatch metric math the savings dashboard uses, evaluated over local time series.

A time series is a NumPy array over the query's timestamps (one slot per period of the time range), NaN where the
series has no datapoint. The subset:

- numbers and ids (another query of the same widget, resolved by the caller);
- arithmetic ``+ - * /`` and ``^`` (power), unary minus; between two series per timestamp, and a timestamp where
  either has no datapoint has none in the result (as CloudWatch pairs series by timestamp); a number applies to
  every datapoint. ``x / 0`` has no datapoint (never infinity, never a made-up zero);
- comparisons ``< <= > >= == !=`` (1 or 0 per datapoint) and ``AND``/``&&``, ``OR``/``||``;
- ``FILL(series, number)``: the number where the series has no datapoint (``REPEAT``, ``LINEAR`` are not here);
- ``IF(condition, a, b)``: per timestamp, ``a`` where the condition is non-zero, else ``b``; without ``b``, no
  datapoint where it is zero; no datapoint where the condition has none;
- ``SUM([s1, s2, ...])``: the per-timestamp sum (no datapoint only where none of them has one);
  ``SUM(series)``: the sum of its datapoints, one number.

Anything else (another function, an id the widget does not define, a syntax error) raises ``MetricMathError``
naming it: a dashboard evaluated here is never shown a silent zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import numpy.typing as npt

from metricbatch.exceptions import MetricBatchError

Series = npt.NDArray[np.float64]
Value = Union[float, Series, list[Series]]  # noqa: UP007 (a runtime alias: mypy and Python 3.11 both read it)

FUNCTIONS = ("FILL", "IF", "SUM")

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|&&|\|\||[-+*/^(),<>\[\]]))"
)
_COMPARISONS: dict[str, Callable[[Series, Series], npt.NDArray[np.bool_]]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


class MetricMathError(MetricBatchError, ValueError):
    """A metric-math expression outside the local subset, malformed, or naming an id its widget lacks."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, op, end
    text: str
    position: int


def tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(expression):
        if expression[position:].strip() == "":
            break
        match = _TOKEN.match(expression, position)
        if not match:
            raise MetricMathError(
                f"metric math: cannot read {expression[position:].strip()[:20]!r} at character {position} "
                f"of {expression!r}"
            )
        kind = match.lastgroup or "op"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


class _Evaluator:
    """A recursive-descent parser that evaluates as it parses (the expressions are short)."""

    def __init__(self, expression: str, resolve: Callable[[str], Value], points: int) -> None:
        self._expression = expression
        self._tokens = tokenize(expression)
        self._index = 0
        self._resolve = resolve
        self._points = points

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._next()
        if token.text != text:
            found = token.text or "the end"
            raise MetricMathError(
                f"metric math: expected {text!r} at character {token.position} of {self._expression!r}, found {found!r}"
            )

    def _series(self, value: Value, what: str) -> Series:
        if isinstance(value, list):
            raise MetricMathError(f"metric math: {what} takes a time series or a number, not an array")
        if isinstance(value, np.ndarray):
            return value
        return np.full(self._points, float(value))

    # -- grammar: or > and > comparison > additive > multiplicative > unary > power > primary ----------------------
    def parse(self) -> Value:
        value = self._or()
        token = self._peek()
        if token.kind != "end":
            raise MetricMathError(
                f"metric math: unexpected {token.text!r} at character {token.position} of {self._expression!r}"
            )
        return value

    def _or(self) -> Value:
        value = self._and()
        while self._peek().text in ("OR", "||"):
            self._next()
            value = self._logical(value, self._and(), np.logical_or)
        return value

    def _and(self) -> Value:
        value = self._comparison()
        while self._peek().text in ("AND", "&&"):
            self._next()
            value = self._logical(value, self._comparison(), np.logical_and)
        return value

    def _logical(self, left: Value, right: Value, op: Callable[..., npt.NDArray[np.bool_]]) -> Value:
        a, b = self._series(left, "AND/OR"), self._series(right, "AND/OR")
        result = op(a != 0, b != 0).astype(np.float64)
        result[np.isnan(a) | np.isnan(b)] = np.nan
        return result

    def _comparison(self) -> Value:
        value = self._additive()
        while self._peek().text in _COMPARISONS:
            op = _COMPARISONS[self._next().text]
            a, b = self._series(value, "a comparison"), self._series(self._additive(), "a comparison")
            with np.errstate(invalid="ignore"):
                result = op(a, b).astype(np.float64)
            result[np.isnan(a) | np.isnan(b)] = np.nan
            value = result
        return value

    def _additive(self) -> Value:
        value = self._multiplicative()
        while self._peek().text in ("+", "-"):
            op = self._next().text
            value = self._arithmetic(op, value, self._multiplicative())
        return value

    def _multiplicative(self) -> Value:
        value = self._unary()
        while self._peek().text in ("*", "/"):
            op = self._next().text
            value = self._arithmetic(op, value, self._unary())
        return value

    def _unary(self) -> Value:
        if self._peek().text == "-":
            self._next()
            return self._arithmetic("*", -1.0, self._unary())
        if self._peek().text == "+":
            self._next()
            return self._unary()
        return self._power()

    def _power(self) -> Value:
        base = self._primary()
        if self._peek().text == "^":
            self._next()
            return self._arithmetic("^", base, self._unary())  # right-associative
        return base

    def _arithmetic(self, op: str, left: Value, right: Value) -> Value:
        if isinstance(left, list) or isinstance(right, list):
            raise MetricMathError(f"metric math: {op!r} between arrays is outside the local subset")
        if not isinstance(left, np.ndarray) and not isinstance(right, np.ndarray):
            return _scalar_arithmetic(op, float(left), float(right))
        a, b = self._series(left, op), self._series(right, op)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op == "+":
                result = a + b
            elif op == "-":
                result = a - b
            elif op == "*":
                result = a * b
            elif op == "/":
                result = np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
            else:
                result = np.power(a, b)
        result = np.asarray(result, dtype=np.float64)
        result[~np.isfinite(result)] = np.nan
        return result

    def _primary(self) -> Value:
        token = self._next()
        if token.kind == "number":
            return float(token.text)
        if token.text == "(":
            value = self._or()
            self._expect(")")
            return value
        if token.text == "[":
            items = [self._series(self._or(), "an array")]
            while self._peek().text == ",":
                self._next()
                items.append(self._series(self._or(), "an array"))
            self._expect("]")
            return items
        if token.kind == "name":
            if self._peek().text == "(":
                return self._call(token)
            if token.text.upper() in FUNCTIONS or token.text.isupper():
                raise MetricMathError(
                    f"metric math: {token.text} in {self._expression!r} is outside the local subset "
                    f"(functions: {', '.join(FUNCTIONS)}; ids start with a lower-case letter)"
                )
            return self._resolve(token.text)
        found = token.text or "the end"
        raise MetricMathError(
            f"metric math: unexpected {found!r} at character {token.position} of {self._expression!r}"
        )

    def _call(self, name: _Token) -> Value:
        function = name.text
        if function not in FUNCTIONS:
            raise MetricMathError(
                f"metric math: function {function} in {self._expression!r} is outside the local subset "
                f"({', '.join(FUNCTIONS)}); see metricbatch/dashboard/metric_math.py"
            )
        self._expect("(")
        arguments: list[Value] = []
        if self._peek().text != ")":
            arguments.append(self._or())
            while self._peek().text == ",":
                self._next()
                arguments.append(self._or())
        self._expect(")")
        if function == "FILL":
            return self._fill(arguments)
        if function == "IF":
            return self._if(arguments)
        return self._sum(arguments)

    def _fill(self, arguments: Sequence[Value]) -> Value:
        if len(arguments) != 2 or isinstance(arguments[1], np.ndarray | list):
            raise MetricMathError(
                f"metric math: FILL takes a series and a number here (REPEAT and LINEAR are outside the local "
                f"subset), in {self._expression!r}"
            )
        series = self._series(arguments[0], "FILL").copy()
        series[np.isnan(series)] = float(arguments[1])
        return series

    def _if(self, arguments: Sequence[Value]) -> Value:
        if len(arguments) not in (2, 3):
            raise MetricMathError(f"metric math: IF takes 2 or 3 arguments, in {self._expression!r}")
        condition = self._series(arguments[0], "IF")
        then = self._series(arguments[1], "IF")
        otherwise = self._series(arguments[2], "IF") if len(arguments) == 3 else np.full(self._points, np.nan)
        result = np.where(condition != 0, then, otherwise)
        result[np.isnan(condition)] = np.nan
        return np.asarray(result, dtype=np.float64)

    def _sum(self, arguments: Sequence[Value]) -> Value:
        if len(arguments) != 1:
            raise MetricMathError(f"metric math: SUM takes one argument, in {self._expression!r}")
        (argument,) = arguments
        if isinstance(argument, list):
            stacked = np.vstack(argument)
            result = np.nansum(stacked, axis=0)
            result[np.all(np.isnan(stacked), axis=0)] = np.nan
            return np.asarray(result, dtype=np.float64)
        if isinstance(argument, np.ndarray):
            return float(np.nansum(argument))
        return float(argument)


def _scalar_arithmetic(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else math.nan
    try:
        return float(a**b)
    except (OverflowError, ZeroDivisionError):
        return math.nan


def evaluate(expression: str, resolve: Callable[[str], Value], points: int) -> Value:
    """Evaluate ``expression`` over ``points`` timestamps; ``resolve(id)`` gives the value of another query."""
    if points < 1:
        raise ValueError("a time series has at least one timestamp")
    return _Evaluator(expression, resolve, points).parse()


def ids_used(expression: str) -> set[str]:
    """The ids an expression refers to (not the function names)."""
    tokens = tokenize(expression)
    return {
        t.text
        for i, t in enumerate(tokens)
        if t.kind == "name" and t.text not in ("AND", "OR") and tokens[i + 1].text != "(" and not t.text.isupper()
    }

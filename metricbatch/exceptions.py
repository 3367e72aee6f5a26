"""The exception tree: one base class, one subclass per thing that can go wrong."""

from __future__ import annotations


class MetricBatchError(Exception):
    """Base class of every error metricbatch raises."""


class InvalidMetricError(MetricBatchError, ValueError):
    """A metric CloudWatch would reject; the message names the rule and the offending value.

    Attributes:
        rule: short machine-readable name of the broken rule, e.g. ``"value.finite"``.
    """

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule
        self.detail = message


class WireFormatError(MetricBatchError, ValueError):
    """An SQS message body that is not a wire-format v1 envelope."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule
        self.detail = message


class ConfigurationError(MetricBatchError):
    """Missing or contradictory configuration, e.g. no queue URL for the default producer."""


class FunctionInvocationError(MetricBatchError):
    """A function run by the local Lambda runner failed an invocation: an error response, a crash or a timeout."""

    def __init__(self, message: str, *, error_type: str = "Runtime.Unknown") -> None:
        super().__init__(message)
        self.error_type = error_type


class FunctionInitError(FunctionInvocationError):
    """The function's runtime could not initialise (bad ``Handler`` string, a module missing from the package)."""


class FunctionTimeoutError(FunctionInvocationError):
    """An invocation ran past its deadline; the sandbox was killed, as Lambda does."""

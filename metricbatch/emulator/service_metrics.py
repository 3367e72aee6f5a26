"""What AWS publishes about the batcher function itself (namespace ``AWS/Lambda``), for the local pipeline.

AWS/Lambda ``Invocations``, ``Errors`` and ``Duration`` (milliseconds) of the function, one datum per invocation,
put through the EMF-marked client (not counted as billed PutMetricData calls). The savings dashboard and
``metricbatch savings`` price the batcher from these. ``AWS/SQS`` metrics are not emulated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

LAMBDA_NAMESPACE = "AWS/Lambda"
MS_PER_SECOND = 1000

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaServiceMetrics:
    """Wraps a handler so that each invocation puts AWS/Lambda metrics of ``function_name``."""

    def __init__(self, cloudwatch: Any, function_name: str) -> None:
        self._cloudwatch = cloudwatch
        self.function_name = function_name

    def wrap(self, handler: Handler) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            started = time.perf_counter()
            failed = True
            try:
                response = handler(event, context)
                failed = False
                return response
            finally:
                self.record((time.perf_counter() - started) * MS_PER_SECOND, failed=failed)

        return invoke

    def record(self, duration_ms: float, *, failed: bool) -> None:
        dimensions = [{"Name": "FunctionName", "Value": self.function_name}]
        try:
            self._cloudwatch.put_metric_data(
                Namespace=LAMBDA_NAMESPACE,
                MetricData=[
                    {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 1.0, "Unit": "Count"},
                    {"MetricName": "Errors", "Dimensions": dimensions, "Value": float(failed), "Unit": "Count"},
                    {"MetricName": "Duration", "Dimensions": dimensions, "Value": duration_ms, "Unit": "Milliseconds"},
                ],
            )
        except Exception:  # CloudWatch down (an injected outage): AWS's own metrics are not the test's subject
            logger.warning("cannot put the local AWS/Lambda metrics of %s", self.function_name, exc_info=True)

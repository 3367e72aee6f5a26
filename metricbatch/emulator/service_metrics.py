"""What AWS publishes about the batcher function itself (namespace ``AWS/Lambda``), for the local pipeline.

AWS/Lambda ``Invocations``, ``Errors`` and ``Duration`` (milliseconds) of the function, one datum per invocation,
put through the EMF-marked client (not counted as billed PutMetricData calls), and the AWS/SQS message counts of
each queue (``SqsServiceMetrics``). The savings dashboard and ``metricbatch savings`` price the pipeline from these.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from metricbatch.limits import MAX_DATUMS_PER_REQUEST

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

        # a deployed function's sandboxes are processes of their own: the poller must still see that
        invoke.runs_isolated = bool(getattr(handler, "runs_isolated", False))  # type: ignore[attr-defined]
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


SQS_NAMESPACE = "AWS/SQS"
MAX_DATUMS_PER_FLUSH = MAX_DATUMS_PER_REQUEST
SECONDS_PER_MINUTE = 60
# What each SQS operation adds to AWS/SQS, per queue: counted from the request (entries) or the response (messages)
_SENT, _RECEIVED, _DELETED, _EMPTY = (
    "NumberOfMessagesSent",
    "NumberOfMessagesReceived",
    "NumberOfMessagesDeleted",
    "NumberOfEmptyReceives",
)


class SqsServiceMetrics:
    """What AWS/SQS reports per queue (``QueueName``), counted from the requests the gateway serves.

    ``NumberOfMessagesSent`` (SendMessage, SendMessageBatch entries that succeeded), ``NumberOfMessagesReceived``
    (messages ReceiveMessage returned), ``NumberOfEmptyReceives`` (ReceiveMessage calls that returned none),
    ``NumberOfMessagesDeleted`` (DeleteMessage, DeleteMessageBatch entries that succeeded), summed per minute.
    ``flush`` puts them into CloudWatch (AWS publishes them every minute; here, when asked). Queue depth and age
    (``ApproximateNumberOf...``) are not emulated.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def observe(self, operation: str, request: bytes, response: bytes) -> None:
        """One successful SQS request (JSON protocol) and its response."""
        if operation not in ("sqs:SendMessage", "sqs:SendMessageBatch", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                             "sqs:DeleteMessageBatch"):  # fmt: skip
            return
        try:
            params, answer = json.loads(request or b"{}"), json.loads(response or b"{}")
        except ValueError:
            return  # the query protocol (old clients): not counted
        if not isinstance(params, dict) or not isinstance(answer, dict) or "QueueUrl" not in params:
            return
        queue = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
        minute = int(time.time()) // SECONDS_PER_MINUTE * SECONDS_PER_MINUTE
        counts: list[tuple[str, int]] = []
        if operation == "sqs:SendMessage":
            counts.append((_SENT, 1))
        elif operation == "sqs:SendMessageBatch":
            counts.append((_SENT, len(answer.get("Successful", []))))
        elif operation == "sqs:ReceiveMessage":
            received = len(answer.get("Messages", []))
            counts.append((_RECEIVED, received) if received else (_EMPTY, 1))
        elif operation == "sqs:DeleteMessage":
            counts.append((_DELETED, 1))
        else:
            counts.append((_DELETED, len(answer.get("Successful", []))))
        with self._lock:
            for name, count in counts:
                self._counts[(queue, name, minute)] += count

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def flush(self, cloudwatch: Any) -> int:
        """Put what was counted since the last flush into ``cloudwatch``; the number of datums."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
                "Timestamp": minute,
                "Value": float(count),
                "Unit": "Count",
            }
            for (queue, name, minute), count in sorted(counts.items())
        ]
        for start in range(0, len(data), MAX_DATUMS_PER_FLUSH):
            cloudwatch.put_metric_data(Namespace=SQS_NAMESPACE, MetricData=data[start : start + MAX_DATUMS_PER_FLUSH])
        return len(data)

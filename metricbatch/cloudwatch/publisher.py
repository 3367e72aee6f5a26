"""Publishing PutMetricData requests: jittered retries within a time budget, bisection of rejected requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from metricbatch.aws.retry import RetryPolicy, attempts, error_code, is_invalid_request, is_retryable, sdk_retries
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.cloudwatch.packing import PutMetricDataRequest

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PublishOutcome:
    published: list[Datum] = field(default_factory=list)
    unsent: list[Datum] = field(default_factory=list)  # still failing after retries, or out of time
    rejected: list[tuple[Datum, str]] = field(default_factory=list)  # CloudWatch refused this very datum
    calls: int = 0  # successful PutMetricData calls
    attempts: int = 0  # every call, failed ones included
    retries: int = 0  # our retries plus the SDK's own
    last_error: str = ""


class CloudWatchPublisher:
    """Sends PutMetricData requests so that nothing is published twice and one bad datum costs only itself.

    Throttling, 5xx and connection errors are retried with full-jitter backoff while ``time_left()`` allows;
    what still fails is reported as unsent. A request CloudWatch rejects as invalid is split in halves until the
    offending datum, and within it the offending value, is alone, so every valid sample still lands.
    """

    def __init__(
        self,
        client: Any,
        *,
        time_left: Callable[[], float] | None = None,
        reserve_seconds: float = 2.0,
        max_attempts: int = 8,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._time_left = time_left
        self._reserve = reserve_seconds
        self._policy = RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        self._sleep = sleep

    def publish(self, requests: Iterable[PutMetricDataRequest]) -> PublishOutcome:
        outcome = PublishOutcome()
        for request in requests:
            self._publish_one(request, outcome)
        return outcome

    def _publish_one(self, request: PutMetricDataRequest, outcome: PublishOutcome) -> None:
        for attempt in attempts(self._policy, time_left=self._time_left, reserve=self._reserve, sleep=self._sleep):
            outcome.retries += 1 if attempt else 0
            outcome.attempts += 1
            try:
                response = self._client.put_metric_data(**request.params())
            except Exception as exc:
                outcome.last_error = f"{error_code(exc)}: {exc}"
                outcome.retries += sdk_retries(exc)
                if is_invalid_request(exc):
                    self._isolate(request, exc, outcome)
                    return
                logger.debug("PutMetricData(%s, %d datums) failed: %s", request.namespace, len(request.datums), exc)
                if not is_retryable(exc):
                    break
                continue
            outcome.calls += 1
            outcome.retries += sdk_retries(response)
            outcome.published.extend(request.datums)
            return
        outcome.unsent.extend(request.datums)

    def _isolate(self, request: PutMetricDataRequest, exc: Exception, outcome: PublishOutcome) -> None:
        if not request.splittable:
            reason = f"CloudWatch rejected the datum: {error_code(exc)}: {_message(exc)}"
            logger.warning("CloudWatch rejected a datum of %s/%s", request.namespace, request.datums[0].name)
            outcome.rejected.append((request.datums[0], reason))
            return
        for half in request.split():
            self._publish_one(half, outcome)


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", exc))
    return str(exc)

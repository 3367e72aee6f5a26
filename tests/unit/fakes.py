"""In-process fakes of the AWS clients the package talks to (no network, no moto).

They record what a real service would have received and can be told to fail the way the real one does.
FakeCloudWatch is strict: every request it accepts has passed ``validate_put_metric_data``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from metricbatch.emulator.strict_cloudwatch import CloudWatchRejection, validate_put_metric_data


def client_error(code: str, status: int = 400, operation: str = "PutMetricData", message: str = "") -> ClientError:
    """A botocore ClientError as the SDK raises it for an HTTP error response."""
    response: Any = {
        "Error": {"Code": code, "Message": message or f"{code} (fake)"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
    }
    return ClientError(response, operation)


def throttling() -> ClientError:
    return client_error("Throttling", 400, message="Rate exceeded")


def connection_error(url: str = "https://fake.invalid") -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url=url)


class FakeCloudWatch:
    """Records PutMetricData calls it accepts; fails on demand.

    Args:
        errors: raised by the next calls, one per call, in order (None: that call goes through).
        fail_with: called with the params of every call; an exception it returns is raised (e.g. throttle one
            namespace only, or reject any request holding a marked datum).
        always: raised by every call once ``errors`` is used up.
    """

    def __init__(
        self,
        *,
        errors: list[BaseException | None] | None = None,
        fail_with: Callable[[dict[str, Any]], BaseException | None] | None = None,
        always: BaseException | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.now = now  # the strict check's clock (default: real time), to match a batcher's fixed clock
        self.errors = list(errors or [])
        self.fail_with = fail_with
        self.always = always
        self.requests: list[dict[str, Any]] = []  # accepted requests, as JSON went over the wire
        self.attempts = 0
        self._lock = threading.Lock()

    def put_metric_data(self, **params: Any) -> dict[str, Any]:
        with self._lock:
            self.attempts += 1
            if self.errors:
                error = self.errors.pop(0)
                if error is not None:
                    raise error
            elif self.always is not None:
                raise self.always
            if self.fail_with is not None:
                failure = self.fail_with(params)
                if failure is not None:
                    raise failure
            raw = json.dumps(params)  # botocore's JSON protocol: default separators
            body = json.loads(raw)
            try:
                validate_put_metric_data(body, len(raw), now=self.now() if self.now else None)
            except CloudWatchRejection as exc:
                raise client_error(exc.code, 400, message=exc.message) from None
            self.requests.append(body)
            return {"ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}

    # -- what CloudWatch stored ---------------------------------------------------------------------------------
    def datums(self) -> list[tuple[str, dict[str, Any]]]:
        return [(r["Namespace"], d) for r in self.requests for d in r["MetricData"]]

    def samples(self, name: str | None = None) -> list[tuple[float, float]]:
        """(value, count) pairs of every accepted datum (of one metric name if given)."""
        pairs: list[tuple[float, float]] = []
        for _, datum in self.datums():
            if name is not None and datum["MetricName"] != name:
                continue
            if "Value" in datum:
                pairs.append((datum["Value"], 1.0))
            else:
                counts = datum.get("Counts", [1.0] * len(datum["Values"]))
                pairs.extend(zip(datum["Values"], counts, strict=True))
        return pairs

    def total(self, name: str | None = None) -> float:
        return sum(v * c for v, c in self.samples(name))

    def sample_count(self, name: str | None = None) -> float:
        return sum(c for _, c in self.samples(name))


class FakeSqs:
    """SendMessageBatch into per-queue lists, enforcing the entry-count and size limits.

    Args:
        fail_entries: called as (call_number, entry_id) for every entry; True reports it in ``Failed``.
        raise_for: called with the queue URL on every call; an exception it returns is raised.
        gate: if given, every call waits for it (a sender "stuck" on the network); ``entered`` is set first.
    """

    def __init__(
        self,
        *,
        fail_entries: Callable[[int, str], bool] | None = None,
        raise_for: Callable[[str], BaseException | None] | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.fail_entries = fail_entries
        self.raise_for = raise_for
        self.gate = gate
        self.entered = threading.Event()
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0
        self.failed_entries = 0  # entries reported in Failed
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        with self._lock:
            self.calls += 1
            call = self.calls
            if self.raise_for is not None:
                error = self.raise_for(QueueUrl)
                if error is not None:
                    raise error
            if not 1 <= len(Entries) <= 10:
                raise client_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, "SendMessageBatch")
            if sum(len(e["MessageBody"].encode()) for e in Entries) > 1024 * 1024:
                raise client_error("AWS.SimpleQueueService.BatchRequestTooLong", 400, "SendMessageBatch")
            successful, failed = [], []
            for entry in Entries:
                if self.fail_entries is not None and self.fail_entries(call, entry["Id"]):
                    self.failed_entries += 1
                    failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"})
                    continue
                attributes = {k: v["StringValue"] for k, v in entry.get("MessageAttributes", {}).items()}
                self.queues.setdefault(QueueUrl, []).append({"Body": entry["MessageBody"], "Attributes": attributes})
                successful.append({"Id": entry["Id"], "MessageId": f"msg-{next(self._ids)}"})
            response: dict[str, Any] = {"Successful": successful}
            if failed:
                response["Failed"] = failed
            return response

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        return list(self.queues.get(queue_url, []))

    def envelopes(self, queue_url: str) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.messages(queue_url)]

    def metrics(self, queue_url: str) -> list[dict[str, Any]]:
        """Every wire metric in the queue, in order."""
        return [metric for envelope in self.envelopes(queue_url) for metric in envelope["metrics"]]


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self, budget: float) -> None:
        self.now = 0.0
        self.budget = budget
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def time_left(self) -> float:
        return self.budget - self.now

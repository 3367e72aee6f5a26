"""SendMessageBatch with its limits (10 entries, 1 MiB) and retries of just the entries that failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from metricbatch.aws.chunking import chunked
from metricbatch.aws.retry import RetryPolicy, attempts, error_code, is_retryable
from metricbatch.limits import MAX_SQS_BATCH_BYTES, MAX_SQS_BATCH_ENTRIES

logger = logging.getLogger(__name__)

# A retry is not started with less time than this left after its backoff: a call the deadline cuts off may still
# have succeeded. The first call is always made (the data has no other way out).
CALL_RESERVE_SECONDS: Final = 1.0


@dataclass(slots=True)
class OutgoingMessage:
    """One message to send; ``context`` is the caller's (e.g. the metrics it carries)."""

    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    context: Any = None

    @property
    def size_bytes(self) -> int:
        return len(self.body.encode()) + sum(
            len(k) + len(v.encode()) + len("String") for k, v in self.attributes.items()
        )


@dataclass(slots=True)
class SendOutcome:
    sent: list[OutgoingMessage] = field(default_factory=list)
    failed: list[OutgoingMessage] = field(default_factory=list)
    requests: int = 0  # SendMessageBatch calls made, failed ones included
    errors: int = 0  # calls that raised plus entries SQS reported as Failed
    last_error: str = ""
    last_code: str = ""  # the error code of ``last_error`` (``retry.error_code``), for classification


def batches_of(messages: Sequence[OutgoingMessage]) -> list[list[OutgoingMessage]]:
    """Group messages into SendMessageBatch calls: <= 10 entries and <= 1 MiB of payload each."""
    size: Callable[[OutgoingMessage], int] = lambda message: message.size_bytes  # noqa: E731
    return list(chunked(messages, size, max_bytes=MAX_SQS_BATCH_BYTES, max_count=MAX_SQS_BATCH_ENTRIES))


class SqsBatchSender:
    """Sends messages to one queue with SendMessageBatch, retrying failed entries with jittered backoff."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self._policy = RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        self._sleep = sleep
        self._time_left = time_left

    def send(self, messages: Sequence[OutgoingMessage]) -> SendOutcome:
        outcome = SendOutcome()
        for batch in batches_of(messages):
            self._send_batch(batch, outcome)
        return outcome

    def _send_batch(self, batch: list[OutgoingMessage], outcome: SendOutcome) -> None:
        pending = {str(i): message for i, message in enumerate(batch)}
        retries = attempts(
            self._policy,
            time_left=self._time_left,
            reserve=CALL_RESERVE_SECONDS,
            always_try_once=True,
            sleep=self._sleep,
        )
        for _ in retries:
            entries = [
                {"Id": entry_id, "MessageBody": m.body, **_attributes(m.attributes)} for entry_id, m in pending.items()
            ]
            outcome.requests += 1
            try:
                response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:
                outcome.errors += 1
                outcome.last_code = error_code(exc)
                outcome.last_error = f"{outcome.last_code}: {exc}"
                logger.debug("SendMessageBatch to %s failed: %s", self.queue_url, outcome.last_error)
                if not is_retryable(exc):
                    break
                continue
            for ok in response.get("Successful", []):
                message = pending.pop(ok["Id"], None)
                if message is not None:
                    outcome.sent.append(message)
            permanent = False
            for failed in response.get("Failed", []):
                outcome.errors += 1
                outcome.last_code = str(failed.get("Code", ""))
                outcome.last_error = f"{outcome.last_code}: {failed.get('Message', '')}"
                if failed.get("SenderFault"):
                    permanent = True
            if not pending or permanent:
                break
        outcome.failed.extend(pending.values())


def _attributes(attributes: dict[str, str]) -> dict[str, Any]:
    if not attributes:
        return {}
    return {"MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}}

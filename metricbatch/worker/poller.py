"""A local stand-in for Lambda's SQS event source mapping, driving the same handler.

Long polling; a batch closes at the batch size, the batching window or 6 MB of payload, whichever comes first;
records are built as Lambda builds them; the handler gets a context with a deadline; what succeeded is deleted,
batch item failures are left to the visibility timeout (so the redrive policy moves repeat failures to the DLQ),
and an exception or a malformed response fails the whole batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metricbatch.limits import MAX_LAMBDA_PAYLOAD_BYTES, MAX_SQS_RECEIVE_MESSAGES, MAX_SQS_WAIT_SECONDS
from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
_invoke_lock = threading.Lock()  # one handler invocation at a time per process, as in one Lambda sandbox
_NEVER = threading.Event()  # a stop signal that never comes, for foreground polling


@dataclass(frozen=True, kw_only=True)
class PollerConfig:
    batch_size: int = 20
    window_seconds: float = 30.0
    max_payload_bytes: int = MAX_LAMBDA_PAYLOAD_BYTES
    function_timeout_seconds: float = 60.0
    function_name: str = "metricbatch-batcher"
    memory_mb: int = 256
    concurrency: int = 1


class LambdaContext:
    """The parts of Lambda's context object handlers use."""

    def __init__(self, *, function_name: str, memory_mb: int, timeout_seconds: float, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class PollerStats:
    """What the poller did; updated from its threads through ``record_invocation`` and ``record_batch_failure``."""

    invocations: int = 0
    records: int = 0
    deleted: int = 0
    item_failures: int = 0
    batch_failures: int = 0
    handler_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_invocation(self, *, records: int, deleted: int, item_failures: int, seconds: float) -> None:
        with self._lock:
            self.invocations += 1
            self.records += records
            self.deleted += deleted
            self.item_failures += item_failures
            self.handler_seconds += seconds
            self.batch_sizes.append(records)

    def record_batch_failure(self) -> None:
        with self._lock:
            self.batch_failures += 1


def build_record(message: dict[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event record exactly as Lambda's event source mapping builds it."""
    attributes = message.get("Attributes", {})
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
            "SenderId": attributes.get("SenderId", "AIDAEXAMPLE"),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
            ),
        },
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsEventSourcePoller:
    """Polls one queue and invokes ``handler(event, context)`` with batches, like Lambda's SQS trigger."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        config: PollerConfig | None = None,
        region: str = "us-east-1",
        emf_sink: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._handler = handler
        self.config = config or PollerConfig()
        self.region = region
        self._emf_sink = emf_sink
        self.queue_arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._carry: list[dict[str, Any]] = []
        self._carry_lock = threading.Lock()

    # -- one batch ------------------------------------------------------------------------------------------------
    def collect_batch(
        self,
        *,
        window_seconds: float | None = None,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> list[Any]:
        """Receive up to batch_size messages, waiting at most the window once the first one arrived.

        ``idle_timeout`` bounds the wait for a first message (None: until stopped). ``stop`` ends the gathering
        early (the background pollers pass theirs; a foreground call such as ``drain`` is never stopped by it).
        """
        stop = stop or _NEVER
        window = self.config.window_seconds if window_seconds is None else window_seconds
        with self._carry_lock:
            messages, self._carry = self._carry, []
        payload = sum(len(m["Body"].encode()) for m in messages)
        started = time.monotonic()
        window_end = started + window if messages else None
        first = True
        while len(messages) < self.config.batch_size and not stop.is_set():
            now = time.monotonic()
            if not first and window_end is not None and now >= window_end:
                break
            if not first and window_end is None and idle_timeout is not None and now - started >= idle_timeout:
                break
            first = False
            wait = MAX_SQS_WAIT_SECONDS if window_end is None else min(MAX_SQS_WAIT_SECONDS, window_end - now)
            if window_end is None and idle_timeout is not None:
                wait = min(wait, max(0.0, idle_timeout - (now - started)))
            wait = min(wait, 1.0)  # stay responsive to stop(); Lambda's pollers also poll continuously
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_SQS_RECEIVE_MESSAGES, self.config.batch_size - len(messages)),
                WaitTimeSeconds=int(wait),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            for message in response.get("Messages", []):
                size = len(message["Body"].encode())
                if messages and payload + size > self.config.max_payload_bytes:
                    with self._carry_lock:
                        self._carry.append(message)  # the next batch starts with it
                    window_end = time.monotonic()
                    continue
                messages.append(message)
                payload += size
            if messages and window_end is None:
                window_end = time.monotonic() + window
            if payload >= self.config.max_payload_bytes:
                break
        return messages

    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the handler on these messages and settle them as the event source mapping would."""
        records = [build_record(m, queue_arn=self.queue_arn, region=self.region) for m in messages]
        event = {"Records": records}
        context = LambdaContext(
            function_name=self.config.function_name,
            memory_mb=self.config.memory_mb,
            timeout_seconds=self.config.function_timeout_seconds,
            region=self.region,
        )
        captured = io.StringIO()
        started = time.perf_counter()
        failed_ids: set[str]
        # A function run in its own sandbox processes (the local Lambda runner) reads its own log stream and runs
        # up to its concurrency; an in-process handler is one sandbox: one invocation at a time, stdout captured.
        isolated = bool(getattr(self._handler, "runs_isolated", False))
        with contextlib.nullcontext() if isolated else _invoke_lock:
            try:
                with contextlib.nullcontext() if isolated else contextlib.redirect_stdout(captured):
                    response = self._handler(event, context)
                failed_ids = _failed_ids(response, {r["messageId"] for r in records})
            except Exception as exc:
                logger.warning("handler failed the whole batch of %d: %s", len(records), exc)
                failed_ids = {r["messageId"] for r in records}
                response = {"error": f"{type(exc).__name__}: {exc}"}
                self.stats.record_batch_failure()
        elapsed = time.perf_counter() - started
        self._forward_output(captured.getvalue())
        to_delete = [m for m in messages if m["MessageId"] not in failed_ids]
        self._delete(to_delete)
        self.stats.record_invocation(
            records=len(records), deleted=len(to_delete), item_failures=len(failed_ids), seconds=elapsed
        )
        return response if isinstance(response, dict) else {"response": response}

    def poll_once(
        self,
        *,
        window_seconds: float | None = None,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> bool:
        """Collect one batch and invoke the handler; False if no message came."""
        messages = self.collect_batch(window_seconds=window_seconds, idle_timeout=idle_timeout, stop=stop)
        if not messages:
            return False
        self.invoke(messages)
        return True

    def drain(self, *, timeout: float = 60.0, window_seconds: float = 0.0) -> None:
        """Process until the queue shows no visible messages (no waiting out a window: the producers are done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll_once(window_seconds=window_seconds, idle_timeout=0.0):
                continue
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessages"]) == 0 and not self._carry:
                return

    # -- running in the background --------------------------------------------------------------------------------
    def start(self) -> SqsEventSourcePoller:
        self._stop.clear()
        for i in range(self.config.concurrency):
            thread = start_daemon(self._loop, f"sqs-poller-{i}")
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(idle_timeout=1.0, stop=self._stop)
            except Exception:
                logger.exception("poller error; retrying")
                self._stop.wait(1.0)

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_SQS_RECEIVE_MESSAGES):
            chunk = messages[start : start + MAX_SQS_RECEIVE_MESSAGES]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def _forward_output(self, output: str) -> None:
        for line in output.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                if self._emf_sink is None:
                    print(line, flush=True)  # a worker's stdout: the CloudWatch agent extracts EMF from it
                    continue
                try:
                    self._emf_sink(json.loads(line))
                except Exception:
                    logger.exception("cannot forward an EMF line")
            elif line.strip():
                print(line, flush=True)  # the handler's own log lines (Powertools JSON), as Lambda's would be


def _failed_ids(response: Any, ids: set[str]) -> set[str]:
    """Batch item failures from a handler response; anything malformed fails the whole batch, as in Lambda."""
    if response is None:
        return set()
    if not isinstance(response, dict) or not isinstance(response.get("batchItemFailures", []), list):
        raise ValueError(f"malformed partial batch response: {response!r:.200}")
    failed = set()
    for item in response.get("batchItemFailures", []):
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in ids:
            raise ValueError(f"malformed batch item failure {item!r:.200}")
        failed.add(identifier)
    return failed

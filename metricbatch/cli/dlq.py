"""``metricbatch dlq inspect|redrive``: what is in the dead-letter queue, and moving it back once the cause is fixed.

``inspect`` only peeks: messages are received with a short visibility timeout and made visible again at once
(ChangeMessageVisibilityBatch to 0), so nothing is deleted or hidden for long. Counts are by origin: the batcher's
``metricbatch.rule`` attribute; else ``redrive: maxReceiveCount exceeded`` for a message the source queue's redrive
policy moved (SQS's ``DeadLetterQueueSourceArn`` system attribute says so; where an endpoint lacks it, a receive
count before this look of at least the source queue's maxReceiveCount); else ``unknown origin`` (e.g. sent
straight to the DLQ). Each inspect counts as one receive, so after maxReceiveCount inspections a message of unknown
origin looks moved.

``redrive`` uses SQS's own StartMessageMoveTask where the service offers it, else a receive -> send -> delete
loop at a bounded rate: a message is deleted from the DLQ only after the send succeeded (at-least-once; an
interrupted run loses nothing and may at worst deliver one message twice). Redriven messages keep their body and
any foreign attributes; the ``metricbatch.*`` attributes are dropped, because the batcher judges the message
afresh and sets them again if it is set aside again.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from metricbatch.cli.arguments import non_negative_int, positive_float, positive_int
from metricbatch.cli.aws_session import aws_session
from metricbatch.cli.queues import redrive_policy
from metricbatch.cli.stacks import stack_outputs
from metricbatch.deploy import settings_for
from metricbatch.exceptions import ConfigurationError, MetricBatchError
from metricbatch.limits import MAX_SQS_RECEIVE_MESSAGES
from metricbatch.wire import ATTR_REASON, ATTR_RULE, ATTR_SOURCE

REDRIVE_POLICY_REASON = "redrive: maxReceiveCount exceeded"
UNKNOWN_ORIGIN = "unknown origin"
# Set by SQS on messages its redrive policy moved into a dead-letter queue.
SOURCE_ARN_ATTRIBUTE = "DeadLetterQueueSourceArn"
ATTRIBUTE_PREFIX = "metricbatch."
# Output ids of infra/stack.py; any output whose key mentions the DLQ is accepted as a fallback.
DLQ_OUTPUT_KEY = "DeadLetterQueueUrl"
QUEUE_OUTPUT_KEY = "QueueUrl"
# StartMessageMoveTask: MaxNumberOfMessagesPerSecond is at most 500.
MAX_MOVE_TASK_RATE = 500
_INSPECT_VISIBILITY_SECONDS = 30  # a crashed inspect hides messages for at most this long
_REDRIVE_VISIBILITY_SECONDS = 60
_BODY_PREVIEW_CHARS = 300
# Answers meaning "this endpoint has no message move tasks" (moto answers 500 with an HTML page).
_UNSUPPORTED_CODES = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperationException"})


class DlqCommandError(MetricBatchError):
    """A queue that cannot be found or used as asked."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dlq", help="inspect the dead-letter queue or redrive it")
    actions = parser.add_subparsers(
        dest="dlq_action", required=True, metavar="ACTION", help="inspect (only looks) or redrive (moves messages)"
    )

    inspect = actions.add_parser("inspect", help="count DLQ messages by reason and show samples (nothing is deleted)")
    _add_queue_arguments(inspect)
    inspect.add_argument("--samples", type=non_negative_int, default=5, help="messages to show (default 5)")
    inspect.add_argument("--max", type=positive_int, default=1000, help="messages to look at, at most (default 1000)")
    inspect.add_argument("--json", action="store_true", help="print the result as one JSON object")
    inspect.set_defaults(func=run_inspect)

    redrive = actions.add_parser("redrive", help="move DLQ messages back to the queue (at-least-once)")
    _add_queue_arguments(redrive)
    redrive.add_argument("--to", default=None, metavar="URL", help="target queue (default with --env: its queue)")
    redrive.add_argument("--rate", type=_rate, default=50.0, metavar="N/s", help="messages per second (default 50)")
    redrive.add_argument(
        "--max", type=positive_int, default=None, help="move at most this many messages (implies --loop)"
    )
    redrive.add_argument("--loop", action="store_true", help="skip StartMessageMoveTask; receive, send, delete")
    redrive.set_defaults(func=run_redrive)


def _add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--env", default=None, help="environment whose stack MetricBatching-<env> owns the DLQ")
    target.add_argument("--queue-url", default=None, help="the DLQ's URL")
    parser.add_argument(
        "--region", default=None, help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region)"
    )


def _rate(text: str) -> float:
    return positive_float(text.removesuffix("/s"))  # 50 or 50/s


# -- finding the queues -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueuePair:
    dlq_url: str
    source_url: str | None


def stack_queues(cloudformation: Any, env: str) -> QueuePair:
    """The DLQ and source queue URLs from the outputs of the environment's stack."""
    outputs = stack_outputs(cloudformation, env)
    dlq = outputs.get(DLQ_OUTPUT_KEY) or next(
        (v for k, v in sorted(outputs.items()) if "deadletter" in k.lower() or "dlq" in k.lower()), None
    )
    if dlq is None:
        raise DlqCommandError(
            f"stack {settings_for(env).stack_name} has no dead-letter queue output (outputs: {sorted(outputs)})"
        )
    return QueuePair(dlq_url=dlq, source_url=outputs.get(QUEUE_OUTPUT_KEY))


def _resolve(args: argparse.Namespace, session: Any) -> QueuePair:
    if args.env:
        return stack_queues(session.client("cloudformation"), args.env)
    return QueuePair(dlq_url=args.queue_url, source_url=None)


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _approximate_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# -- inspect ------------------------------------------------------------------------------------------------------
@dataclass
class DlqSummary:
    """What ``inspect`` found: messages and invalid datums by rule, and a few samples."""

    queue_url: str
    approximate_messages: int = 0
    inspected: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    datums_by_rule: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue_url": self.queue_url,
            "approximate_messages": self.approximate_messages,
            "inspected": self.inspected,
            "by_rule": dict(self.by_rule.most_common()),
            "datums_by_rule": dict(self.datums_by_rule.most_common()),
            "samples": self.samples,
        }


def _attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return None if value is None else value.get("StringValue")


def _invalid_datum_rules(body: str) -> list[str]:
    """Rules of the ``errors`` list in a set-aside body of invalid datums (empty for any other shape)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(data, dict) or not isinstance(data.get("errors"), list):
        return []
    return [str(e.get("rule")) for e in data["errors"] if isinstance(e, dict) and e.get("rule")]


def source_max_receive_count(sqs: Any, dlq_url: str) -> int | None:
    """The smallest maxReceiveCount of the queues whose redrive policy targets this DLQ (None: none found)."""
    counts = []
    try:
        for source in sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", []):
            policy = redrive_policy(sqs, source)
            if policy is not None:
                counts.append(int(policy["maxReceiveCount"]))
    except (ClientError, BotoCoreError, ValueError, KeyError) as exc:  # e.g. no permission: origin stays unknown
        print(f"metricbatch dlq: cannot read the DLQ's source queues: {exc}", file=sys.stderr)
        return None
    return min(counts, default=None)


def message_origin(message: dict[str, Any], max_receive_count: int | None) -> str:
    """Why a message is in the DLQ, as far as it shows (see the module docstring)."""
    rule = _attribute(message, ATTR_RULE)
    if rule:
        return rule
    attributes = message.get("Attributes", {})
    if SOURCE_ARN_ATTRIBUTE in attributes:
        return REDRIVE_POLICY_REASON
    receives_before = int(attributes.get("ApproximateReceiveCount", "1")) - 1  # this receive is inspect's own
    if max_receive_count is not None and receives_before >= max_receive_count:
        return REDRIVE_POLICY_REASON
    return UNKNOWN_ORIGIN


def inspect_dlq(sqs: Any, queue_url: str, *, samples: int = 5, max_messages: int = 1000) -> DlqSummary:
    """Peek at up to ``max_messages`` messages; every one is made visible again before this returns."""
    summary = DlqSummary(queue_url=queue_url, approximate_messages=_approximate_depth(sqs, queue_url))
    max_receive_count = source_max_receive_count(sqs, queue_url)
    seen: set[str] = set()
    handles: list[str] = []
    try:
        while len(seen) < max_messages:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(MAX_SQS_RECEIVE_MESSAGES, max_messages - len(seen)),
                VisibilityTimeout=_INSPECT_VISIBILITY_SECONDS,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            fresh = 0
            for message in messages:
                handles.append(message["ReceiptHandle"])
                if message["MessageId"] in seen:
                    continue
                seen.add(message["MessageId"])
                fresh += 1
                _count(summary, message, samples, message_origin(message, max_receive_count))
            if not fresh:
                break
    finally:
        _make_visible(sqs, queue_url, handles)
    return summary


def _count(summary: DlqSummary, message: dict[str, Any], samples: int, rule: str) -> None:
    summary.inspected += 1
    summary.by_rule[rule] += 1
    for datum_rule in _invalid_datum_rules(message["Body"]):
        summary.datums_by_rule[datum_rule] += 1
    if len(summary.samples) < samples:
        body = message["Body"]
        summary.samples.append(
            {
                "message_id": message["MessageId"],
                "rule": rule,
                "reason": _attribute(message, ATTR_REASON) or "",
                "source_message_id": _attribute(message, ATTR_SOURCE),
                "body_bytes": len(body.encode()),
                "body": body if len(body) <= _BODY_PREVIEW_CHARS else body[:_BODY_PREVIEW_CHARS] + "...",
            }
        )


def _make_visible(sqs: Any, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), MAX_SQS_RECEIVE_MESSAGES):
        chunk = handles[start : start + MAX_SQS_RECEIVE_MESSAGES]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
        except (ClientError, BotoCoreError) as exc:  # they come back by themselves after the short timeout
            print(f"metricbatch dlq: could not make messages visible again at once: {exc}", file=sys.stderr)


def print_summary(summary: DlqSummary, stream: Any = None) -> None:
    lines = [
        f"DLQ {summary.queue_url}",
        f"messages inspected {summary.inspected} (approximately {summary.approximate_messages} in the queue)",
        "",
        f"{'reason (metricbatch.rule, or origin)':<44}{'messages':>10}",
    ]
    lines += [f"{rule:<44}{count:>10}" for rule, count in summary.by_rule.most_common()]
    if summary.datums_by_rule:
        lines += ["", f"{'invalid datums by rule':<44}{'datums':>10}"]
        lines += [f"{rule:<44}{count:>10}" for rule, count in summary.datums_by_rule.most_common()]
    if summary.samples:
        lines += ["", "samples:"]
        for sample in summary.samples:
            lines.append(f"  {sample['message_id']}  {sample['rule']}  {sample['reason']}")
            lines.append(f"    body ({sample['body_bytes']} bytes): {sample['body']}")
    print("\n".join(lines), file=stream or sys.stdout)


def run_inspect(args: argparse.Namespace) -> int:
    session = aws_session(args.region)
    try:
        queues = _resolve(args, session)
        summary = inspect_dlq(session.client("sqs"), queues.dlq_url, samples=args.samples, max_messages=args.max)
    except (MetricBatchError, ClientError, BotoCoreError) as exc:
        print(f"metricbatch dlq inspect: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        print_summary(summary)
    return 0


# -- redrive ------------------------------------------------------------------------------------------------------
@dataclass
class RedriveResult:
    moved: int = 0
    failed: int = 0
    interrupted: bool = False
    move_task_handle: str | None = None
    last_error: str = ""


class RateLimiter:
    """At most ``rate`` calls to ``wait()`` per second, evenly spaced."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._next = clock()

    def wait(self, stop: threading.Event) -> None:
        delay = self._next - self._clock()
        if delay > 0:
            stop.wait(delay)
        self._next = max(self._next, self._clock()) + self._interval


def redrive_loop(
    sqs: Any,
    dlq_url: str,
    target_url: str,
    *,
    rate: float,
    max_messages: int | None = None,
    stop: threading.Event | None = None,
) -> RedriveResult:
    """Move messages one at a time: send to the target, then delete from the DLQ. Stops when ``stop`` is set."""
    stop = stop or threading.Event()
    limiter = RateLimiter(rate)
    result = RedriveResult()
    while not stop.is_set() and (max_messages is None or result.moved < max_messages):
        wanted = MAX_SQS_RECEIVE_MESSAGES if max_messages is None else min(10, max_messages - result.moved)
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=wanted,
            VisibilityTimeout=_REDRIVE_VISIBILITY_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        unhandled = [m["ReceiptHandle"] for m in messages]
        try:
            for message in messages:
                if stop.is_set():
                    result.interrupted = True
                    break
                limiter.wait(stop)
                try:
                    sqs.send_message(QueueUrl=target_url, MessageBody=message["Body"], **_kept_attributes(message))
                except (ClientError, BotoCoreError) as exc:
                    result.failed += 1
                    result.last_error = f"send failed, message left in the DLQ: {exc}"
                    stop.set()
                    break
                unhandled.remove(message["ReceiptHandle"])
                try:
                    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                except (ClientError, BotoCoreError) as exc:
                    # Sent but still in the DLQ: it may be redriven twice (at-least-once), never lost.
                    result.last_error = f"delete failed after the send; the message may be redriven again: {exc}"
                result.moved += 1
        finally:
            _make_visible(sqs, dlq_url, unhandled)  # what this run will not move is available at once
    if stop.is_set() and not result.failed:
        result.interrupted = result.interrupted or _approximate_depth(sqs, dlq_url) > 0
    return result


def _kept_attributes(message: dict[str, Any]) -> dict[str, Any]:
    kept = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
        if not name.startswith(ATTRIBUTE_PREFIX)
    }
    return {"MessageAttributes": kept} if kept else {}


def start_move_task(session: Any, dlq_url: str, target_url: str | None, rate: float) -> str | None:
    """Start SQS's own message move task; None when the endpoint does not offer it (e.g. moto)."""
    # One attempt only: an endpoint without the action answers 500, which the SDK would otherwise retry.
    sqs = session.client("sqs", config=Config(retries={"total_max_attempts": 1}))
    params: dict[str, Any] = {
        "SourceArn": _queue_arn(sqs, dlq_url),
        "MaxNumberOfMessagesPerSecond": max(1, min(MAX_MOVE_TASK_RATE, int(rate))),
    }
    if target_url:
        params["DestinationArn"] = _queue_arn(sqs, target_url)
    try:
        response = sqs.start_message_move_task(**params)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if exc.response.get("Error", {}).get("Code") in _UNSUPPORTED_CODES or status >= 500:
            return None
        raise
    return str(response["TaskHandle"])


@contextmanager
def _stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C lets the current message finish, then stops (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_redrive(args: argparse.Namespace) -> int:
    session = aws_session(args.region)
    sqs = session.client("sqs")
    try:
        queues = _resolve(args, session)
        target = args.to or queues.source_url
        if target is None:
            raise DlqCommandError("--queue-url needs --to URL (the queue to move the messages to)")
        if not args.loop and args.max is None:
            handle = start_move_task(session, queues.dlq_url, args.to or queues.source_url, args.rate)
            if handle is not None:
                print(f"message move task started: {handle}")
                print("progress: aws sqs list-message-move-tasks --source-arn " + _queue_arn(sqs, queues.dlq_url))
                return 0
            print("StartMessageMoveTask is not available here; moving messages one by one", file=sys.stderr)
        stop = threading.Event()
        with _stop_on_sigint(stop):
            result = redrive_loop(sqs, queues.dlq_url, target, rate=args.rate, max_messages=args.max, stop=stop)
    except (MetricBatchError, ConfigurationError, ClientError, BotoCoreError) as exc:
        print(f"metricbatch dlq redrive: {exc}", file=sys.stderr)
        return 2
    print(f"moved {result.moved} message(s) from {queues.dlq_url} to {target}")
    if result.last_error:
        print(f"metricbatch dlq redrive: {result.last_error}", file=sys.stderr)
    if result.interrupted:
        print("stopped before the DLQ was empty; run again to continue", file=sys.stderr)
        return 130 if stop.is_set() and not result.failed else 1
    return 1 if result.failed else 0

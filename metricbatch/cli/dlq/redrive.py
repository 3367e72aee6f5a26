"""``metricbatch dlq redrive``: move DLQ messages back to their queue once the cause is fixed.

``redrive`` uses SQS's own StartMessageMoveTask where the service offers it, else a receive -> send -> delete
loop at a bounded rate: a message is deleted from the DLQ only after the send succeeded (at-least-once; an
interrupted run loses nothing and may at worst deliver one message twice). Redriven messages keep their body and
any foreign attributes; the ``metricbatch.*`` attributes are dropped, because the batcher judges the message
afresh and sets them again if it is set aside again.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from metricbatch.aws.session import aws_session
from metricbatch.cli.arguments import REGION_FLAG
from metricbatch.cli.dlq.pacing import RateLimiter, stop_on_sigint
from metricbatch.cli.dlq.queues import (
    DlqCommandError,
    approximate_depth,
    make_visible,
    queue_arn,
    resolve_queues,
)
from metricbatch.exceptions import ConfigurationError, MetricBatchError
from metricbatch.limits import MAX_SQS_RECEIVE_MESSAGES

# The metricbatch.* attributes the batcher sets on set-aside messages; dropped on redrive.
ATTRIBUTE_PREFIX = "metricbatch."
MAX_MOVE_TASK_RATE = 500
_REDRIVE_VISIBILITY_SECONDS = 60
_UNSUPPORTED_CODES = frozenset({"InvalidAction", "UnsupportedOperation", "NotImplemented", "UnknownOperationException"})


@dataclass
class RedriveResult:
    moved: int = 0
    failed: int = 0
    interrupted: bool = False
    move_task_handle: str | None = None
    last_error: str = ""


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
        wanted = (
            MAX_SQS_RECEIVE_MESSAGES
            if max_messages is None
            else min(MAX_SQS_RECEIVE_MESSAGES, max_messages - result.moved)
        )
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
            make_visible(sqs, dlq_url, unhandled)  # what this run will not move is available at once
    if stop.is_set() and not result.failed:
        result.interrupted = result.interrupted or approximate_depth(sqs, dlq_url) > 0
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
        "SourceArn": queue_arn(sqs, dlq_url),
        "MaxNumberOfMessagesPerSecond": max(1, min(MAX_MOVE_TASK_RATE, int(rate))),
    }
    if target_url:
        params["DestinationArn"] = queue_arn(sqs, target_url)
    try:
        response = sqs.start_message_move_task(**params)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if exc.response.get("Error", {}).get("Code") in _UNSUPPORTED_CODES or status >= 500:
            return None
        raise
    return str(response["TaskHandle"])


def run_redrive(args: argparse.Namespace) -> int:
    session = aws_session(args.region, region_flag=REGION_FLAG)
    sqs = session.client("sqs")
    try:
        queues = resolve_queues(args, session)
        target = args.to or queues.source_url
        if target is None:
            raise DlqCommandError("--queue-url needs --to URL (the queue to move the messages to)")
        if not args.loop and args.max is None:
            handle = start_move_task(session, queues.dlq_url, args.to or queues.source_url, args.rate)
            if handle is not None:
                print(f"message move task started: {handle}")
                print("progress: aws sqs list-message-move-tasks --source-arn " + queue_arn(sqs, queues.dlq_url))
                return 0
            print("StartMessageMoveTask is not available here; moving messages one by one", file=sys.stderr)
        stop = threading.Event()
        with stop_on_sigint(stop):
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

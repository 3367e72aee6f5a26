"""``metricbatch dlq inspect``: count the DLQ's messages by origin and show samples; nothing is deleted.

``inspect`` only peeks: messages are received with a short visibility timeout and made visible again at once
(ChangeMessageVisibilityBatch to 0), so nothing is deleted or hidden for long. Counts are by origin: the batcher's
``metricbatch.rule`` attribute; else ``redrive: maxReceiveCount exceeded`` for a message the source queue's redrive
policy moved (SQS's ``DeadLetterQueueSourceArn`` system attribute says so; where an endpoint lacks it, a receive
count before this look of at least the source queue's maxReceiveCount); else ``unknown origin`` (e.g. sent
straight to the DLQ). Each inspect counts as one receive, so after maxReceiveCount inspections a message of unknown
origin looks moved.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from metricbatch.aws.session import aws_session
from metricbatch.cli.arguments import REGION_FLAG
from metricbatch.cli.dlq.queues import (
    approximate_depth,
    make_visible,
    resolve_queues,
    source_max_receive_count,
)
from metricbatch.exceptions import MetricBatchError
from metricbatch.limits import MAX_SQS_RECEIVE_MESSAGES
from metricbatch.wire import ATTR_REASON, ATTR_RULE, ATTR_SOURCE

REDRIVE_POLICY_REASON = "redrive: maxReceiveCount exceeded"
UNKNOWN_ORIGIN = "unknown origin"
# Set by SQS on messages its redrive policy moved into a dead-letter queue.
SOURCE_ARN_ATTRIBUTE = "DeadLetterQueueSourceArn"
_INSPECT_VISIBILITY_SECONDS = 30  # a crashed inspect hides messages for at most this long
_BODY_PREVIEW_CHARS = 300


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
    summary = DlqSummary(queue_url=queue_url, approximate_messages=approximate_depth(sqs, queue_url))
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
        make_visible(sqs, queue_url, handles)
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
    session = aws_session(args.region, region_flag=REGION_FLAG)
    try:
        queues = resolve_queues(args, session)
        summary = inspect_dlq(session.client("sqs"), queues.dlq_url, samples=args.samples, max_messages=args.max)
    except (MetricBatchError, ClientError, BotoCoreError) as exc:
        print(f"metricbatch dlq inspect: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        print_summary(summary)
    return 0

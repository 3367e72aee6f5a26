"""Finding the queues of ``metricbatch dlq``: a stack's outputs, a queue's ARN, depth and redrive policy."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from metricbatch.cli.stacks import stack_outputs
from metricbatch.deploy import settings_for
from metricbatch.exceptions import MetricBatchError
from metricbatch.limits import MAX_SQS_RECEIVE_MESSAGES

# Output ids of infra/stack.py; any output whose key mentions the DLQ is accepted as a fallback.
DLQ_OUTPUT_KEY = "DeadLetterQueueUrl"
QUEUE_OUTPUT_KEY = "QueueUrl"


class DlqCommandError(MetricBatchError):
    """A queue that cannot be found or used as asked."""


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


def resolve_queues(args: argparse.Namespace, session: Any) -> QueuePair:
    if args.env:
        return stack_queues(session.client("cloudformation"), args.env)
    return QueuePair(dlq_url=args.queue_url, source_url=None)


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def approximate_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def redrive_policy(sqs: Any, queue_url: str) -> dict[str, Any] | None:
    """The queue's redrive policy (``deadLetterTargetArn``, ``maxReceiveCount``), or None without one."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = attributes.get("RedrivePolicy")
    return dict(json.loads(policy)) if policy else None


def dead_letter_queue_url(sqs: Any, queue_url: str) -> str | None:
    """The URL of the queue's redrive target, or None when it has no redrive policy."""
    policy = redrive_policy(sqs, queue_url)
    if policy is None:
        return None
    *_, account, name = str(policy["deadLetterTargetArn"]).split(":")  # arn:aws:sqs:<region>:<account>:<name>
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


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


def make_visible(sqs: Any, queue_url: str, handles: list[str]) -> None:
    for start in range(0, len(handles), MAX_SQS_RECEIVE_MESSAGES):
        chunk = handles[start : start + MAX_SQS_RECEIVE_MESSAGES]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
        except (ClientError, BotoCoreError) as exc:  # they come back by themselves after the short timeout
            print(f"metricbatch dlq: could not make messages visible again at once: {exc}", file=sys.stderr)

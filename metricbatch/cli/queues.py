"""What an SQS queue says about its dead-letter queue (its RedrivePolicy attribute)."""

from __future__ import annotations

import json
from typing import Any


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

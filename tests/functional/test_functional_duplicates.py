"""At-least-once delivery: what a redelivered message does to the numbers, measured through the real handler."""

from __future__ import annotations

import json
from typing import Any

from functional_support import calls, now, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline


def _one_message(pipeline: LocalPipeline, namespace: str, *, visibility: int | None = None) -> dict[str, Any]:
    body = json.dumps(
        {
            "v": 1,
            "metrics": [{"namespace": namespace, "name": "Orders", "value": 5, "unit": "Count", "timestamp": now()}],
        }
    )
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=body)
    messages = _receive(pipeline, visibility)
    assert len(messages) == 1
    message: dict[str, Any] = messages[0]
    return message


def _receive(pipeline: LocalPipeline, visibility: int | None) -> list[dict[str, Any]]:
    extra = {} if visibility is None else {"VisibilityTimeout": visibility}
    messages: list[dict[str, Any]] = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"], **extra
    )["Messages"]
    return messages


def test_a_message_delivered_twice_in_one_batch_is_published_once(clean_pipeline: LocalPipeline) -> None:
    # GIVEN one message that SQS hands out twice (same MessageId, two receipt handles) within one batch
    namespace = unique_namespace("Dup")
    first = _one_message(clean_pipeline, namespace, visibility=0)
    second = _receive(clean_pipeline, None)[0]
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    # WHEN the handler gets both copies
    response = clean_pipeline.poller.invoke([first, second])
    # THEN its metric is counted once, and neither copy is failed
    assert response == {"batchItemFailures": []}
    assert clean_pipeline.read_series(namespace, "Orders", unit="Count") == (5.0, 1.0)


def test_a_redelivery_to_the_same_sandbox_is_not_published_again(clean_pipeline: LocalPipeline) -> None:
    # GIVEN a message the handler already published (a warm sandbox), delivered again later
    namespace = unique_namespace("Dup")
    message = _one_message(clean_pipeline, namespace)
    clean_pipeline.poller.invoke([message])
    put_calls = calls(clean_pipeline, "cloudwatch:PutMetricData")
    # WHEN the same message arrives once more
    response = clean_pipeline.poller.invoke([message])
    # THEN nothing is published again and the sum stays right
    assert response == {"batchItemFailures": []}
    assert calls(clean_pipeline, "cloudwatch:PutMetricData") == put_calls
    assert clean_pipeline.read_series(namespace, "Orders", unit="Count") == (5.0, 1.0)


def test_a_redelivery_to_another_sandbox_counts_twice(clean_pipeline: LocalPipeline) -> None:
    # GIVEN a message published by one sandbox
    namespace = unique_namespace("Dup")
    message = _one_message(clean_pipeline, namespace)
    clean_pipeline.poller.invoke([message])
    # WHEN a different sandbox (no memory of it) receives it again -- the design's documented limit
    from metricbatch.batcher import handler as batcher_lambda

    original = batcher_lambda.sandbox()
    batcher_lambda.new_sandbox()
    try:
        clean_pipeline.poller.invoke([message])
    finally:
        batcher_lambda.new_sandbox(original)
    # THEN CloudWatch counts it twice: sum and sample count doubled (measured, and stated in the README)
    assert clean_pipeline.read_series(namespace, "Orders", unit="Count") == (10.0, 2.0)

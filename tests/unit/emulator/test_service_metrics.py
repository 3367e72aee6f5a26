"""AWS/SQS message counts from the requests the gateway serves, and AWS/Lambda metrics per invocation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metricbatch.emulator.service_metrics import LambdaServiceMetrics, SqsServiceMetrics

URL = "http://127.0.0.1:1/123456789012/"


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.data: list[tuple[str, dict[str, Any]]] = []

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.data.extend((Namespace, datum) for datum in MetricData)

    def totals(self) -> dict[tuple[str, str], float]:
        totals: dict[tuple[str, str], float] = {}
        for _, datum in self.data:
            key = (datum["Dimensions"][0]["Value"], datum["MetricName"])
            totals[key] = totals.get(key, 0.0) + datum["Value"]
        return totals


def _observe(metrics: SqsServiceMetrics, operation: str, queue: str, request: dict[str, Any], response: Any) -> None:
    metrics.observe(f"sqs:{operation}", json.dumps({"QueueUrl": URL + queue, **request}).encode(),
                    json.dumps(response).encode())  # fmt: skip


def test_sqs_counts_messages_per_queue_as_aws_sqs_reports_them() -> None:
    metrics = SqsServiceMetrics()
    # GIVEN 3 sends (one batch of 2 with 1 failed entry, one single), 2 receives (3 messages, then none), deletes
    _observe(metrics, "SendMessageBatch", "q", {"Entries": [{}, {}, {}]}, {"Successful": [{}, {}], "Failed": [{}]})
    _observe(metrics, "SendMessage", "q", {"MessageBody": "x"}, {"MessageId": "1"})
    _observe(metrics, "ReceiveMessage", "q", {}, {"Messages": [{}, {}, {}]})
    _observe(metrics, "ReceiveMessage", "q", {}, {})
    _observe(metrics, "DeleteMessageBatch", "q", {"Entries": [{}, {}]}, {"Successful": [{}, {}]})
    _observe(metrics, "DeleteMessage", "q", {"ReceiptHandle": "r"}, {})
    _observe(metrics, "SendMessage", "q-dlq", {"MessageBody": "poison"}, {"MessageId": "2"})
    _observe(metrics, "GetQueueAttributes", "q", {}, {"Attributes": {}})  # not a message count
    cloudwatch = RecordingCloudWatch()
    # WHEN flushed
    assert metrics.flush(cloudwatch) == 5
    # THEN each queue's counts are what AWS/SQS would report
    assert cloudwatch.totals() == {
        ("q", "NumberOfMessagesSent"): 3.0,
        ("q", "NumberOfMessagesReceived"): 3.0,
        ("q", "NumberOfEmptyReceives"): 1.0,
        ("q", "NumberOfMessagesDeleted"): 3.0,
        ("q-dlq", "NumberOfMessagesSent"): 1.0,
    }
    assert {namespace for namespace, _ in cloudwatch.data} == {"AWS/SQS"}
    # AND a second flush puts nothing twice
    assert metrics.flush(RecordingCloudWatch()) == 0


def test_lambda_metrics_per_invocation_errors_included() -> None:
    cloudwatch = RecordingCloudWatch()
    metrics = LambdaServiceMetrics(cloudwatch, "fn")

    def handler(event: dict[str, Any], context: Any) -> Any:
        if event.get("fail"):
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    wrapped = metrics.wrap(handler)
    assert wrapped({}, None) == {"batchItemFailures": []}
    with pytest.raises(RuntimeError):
        wrapped({"fail": True}, None)
    totals = cloudwatch.totals()
    assert totals[("fn", "Invocations")] == 2.0 and totals[("fn", "Errors")] == 1.0
    assert totals[("fn", "Duration")] >= 0.0
    assert {namespace for namespace, _ in cloudwatch.data} == {"AWS/Lambda"}

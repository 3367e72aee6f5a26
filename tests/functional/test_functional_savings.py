"""Issue 16: the saving the dashboard and `metricbatch savings` show comes from what was published, never from what
was received, through the real handler, poller and EMF self-metrics on the embedded AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from functional_support import calls, now, unique_namespace

from metricbatch.batcher.self_metrics import API_CALLS_SAVED, METRICS_PUBLISHED, METRICS_RECEIVED
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline
from metricbatch.env import QUEUE_URL, SELF_METRICS_NAMESPACE

SAMPLES = 40


class SelfMetrics:
    """The batcher's self-metrics as CloudWatch holds them (EMF extracted), relative to when this was made."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self._pipeline = pipeline
        self._start = {name: self._read(name) for name in (API_CALLS_SAVED, METRICS_PUBLISHED, METRICS_RECEIVED)}

    def _read(self, name: str) -> tuple[float, float]:
        return self._pipeline.read_series(SELF_METRICS_NAMESPACE, name, {"service": LOCAL_SERVICE_NAME})

    def sum(self, name: str) -> float:
        return self._read(name)[0] - self._start[name][0]

    def emitted(self, name: str) -> float:
        """How many EMF documents carried the metric since (one per invocation)."""
        return self._read(name)[1] - self._start[name][1]


def _send_one_message(pipeline: LocalPipeline, namespace: str) -> None:
    ts = now()
    metrics = [
        {"namespace": namespace, "name": f"Op{i % 4}", "value": float(i), "timestamp": ts} for i in range(SAMPLES)
    ]
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps({"v": 1, "metrics": metrics}))


def _receive(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    # Visible again at once if not deleted: the next receive is SQS's redelivery.
    messages: list[dict[str, Any]] = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])
    return messages


def test_while_cloudwatch_fails_nothing_is_saved_and_the_recovery_counts_once(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Savings")
    metrics = SelfMetrics(pipeline)
    # GIVEN CloudWatch throttling every PutMetricData call
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", "throttle"))
    _send_one_message(pipeline, namespace)
    # WHEN the batch is handled: its datums are re-queued
    pipeline.poller.invoke(_receive(pipeline))
    # THEN the message was received, but nothing was published, so nothing was saved
    assert metrics.sum(METRICS_RECEIVED) == SAMPLES
    assert metrics.sum(METRICS_PUBLISHED) == 0
    assert metrics.sum(API_CALLS_SAVED) == 0
    # WHEN CloudWatch recovers and the re-queued datums are published
    pipeline.aws.faults.clear()
    pipeline.poller.drain(timeout=30, window_seconds=0.2)
    # THEN the saving is what was published, once, less the calls that published it
    put_calls = calls(pipeline, "cloudwatch:PutMetricData") - pipeline.aws.ledger.errors["cloudwatch:PutMetricData"]
    assert pipeline.read_series(namespace, "Op0")[1] == SAMPLES / 4
    assert metrics.sum(METRICS_RECEIVED) == SAMPLES  # a re-queued message is not received again
    assert metrics.sum(METRICS_PUBLISHED) == SAMPLES
    assert metrics.sum(API_CALLS_SAVED) == SAMPLES - put_calls


def test_a_redelivered_batch_is_saved_once(clean_pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Savings")
    metrics = SelfMetrics(pipeline)
    # GIVEN CloudWatch failing and the re-queue impossible (a queue that does not exist): the whole batch fails
    pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", "unavailable"))
    monkeypatch.setenv(QUEUE_URL, pipeline.queue_url + "-missing")
    _send_one_message(pipeline, namespace)
    # WHEN SQS delivers it three times: twice while it cannot be published, once after recovery
    for _ in range(2):
        response = pipeline.poller.invoke(_receive(pipeline))
        assert "error" in response  # Powertools' BatchProcessingError: every record failed, all redelivered
    pipeline.aws.faults.clear()
    monkeypatch.undo()
    assert pipeline.poller.invoke(_receive(pipeline)) == {"batchItemFailures": []}
    # THEN it was published once, and saved once: not once per delivery
    assert pipeline.read_series(namespace, "Op0")[1] == SAMPLES / 4
    assert metrics.sum(METRICS_PUBLISHED) == SAMPLES
    assert metrics.sum(API_CALLS_SAVED) == SAMPLES - 1
    # AND every invocation, the two that failed whole included, emitted its self-metrics exactly once
    assert metrics.emitted(API_CALLS_SAVED) == 3
    assert pipeline.queue_depth() == 0

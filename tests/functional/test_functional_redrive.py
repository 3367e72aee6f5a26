"""Redrive: a record the handler keeps failing moves to the DLQ after maxReceiveCount receives; the rest is deleted."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from typing import Any

from functional_support import send_bodies, take_dlq

from metricbatch.deploy import settings_for
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller

MAX_RECEIVE_COUNT = 2
# batch size 10: a batching window of 0 s allows at most 10 (the event source mapping's rule).
PIPELINE_OPTIONS = {
    "settings": dataclasses.replace(
        settings_for("dev"),
        function_timeout_seconds=1,
        batching_window_seconds=0,
        batch_size=10,
        max_receive_count=MAX_RECEIVE_COUNT,
    )
}


class FailingRecordHandler:
    """Processes records with Powertools' partial batch responses; raises for the poison record."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        def record_handler(record: SQSRecord) -> None:
            self.seen[record.body] += 1
            if json.loads(record.body).get("poison"):
                raise RuntimeError("cannot process this record")

        processor = BatchProcessor(event_type=EventType.SQS)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )


def test_a_record_failing_every_time_lands_in_the_dlq_after_max_receive_count(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    assert pipeline.settings.visibility_timeout_seconds == 6  # 6 x 1 s function + 0 s window
    # A 1 s visibility timeout keeps the test short; the redrive policy is what is under test.
    pipeline.sqs.set_queue_attributes(QueueUrl=pipeline.queue_url, Attributes={"VisibilityTimeout": "1"})
    handler = FailingRecordHandler()
    poller = SqsEventSourcePoller(
        pipeline.sqs,
        pipeline.queue_url,
        handler,
        config=PollerConfig(batch_size=10, window_seconds=0, function_timeout_seconds=1),
    )
    poison = json.dumps({"poison": True})
    healthy = [json.dumps({"n": n}) for n in range(3)]

    # GIVEN a batch with one record the handler always fails
    send_bodies(pipeline, [poison, *healthy])

    # WHEN the event source mapping keeps polling
    dlq: list[Any] = []
    deadline = time.monotonic() + 15
    while not dlq and time.monotonic() < deadline:
        poller.poll_once(window_seconds=0, idle_timeout=1.5)
        dlq = take_dlq(pipeline)

    # THEN after max_receive_count receives the poison message is in the DLQ, untouched
    assert [m.body for m in dlq] == [poison]
    assert handler.seen[poison] == MAX_RECEIVE_COUNT
    # AND the other records were processed once and deleted at the first pass
    assert all(handler.seen[body] == 1 for body in healthy)
    assert poller.stats.item_failures == MAX_RECEIVE_COUNT
    assert pipeline.queue_depth() == 0

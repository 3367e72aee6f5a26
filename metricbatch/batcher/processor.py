"""Driving MetricBatcher from a Lambda SQS event with Powertools' batch utility (partial batch responses).

``AggregatingSqsProcessor`` builds on Powertools' documented extension point, ``BasePartialProcessor``: the record
handler only validates; leaving the context (``_clean``) publishes the whole batch and reports the records that
could not be settled as batch item failures.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BasePartialProcessor, FailureResponse, SuccessResponse
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError, UnexpectedBatchTypeError
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from metricbatch.batcher.batcher import MetricBatcher
from metricbatch.batcher.config import BatcherConfig
from metricbatch.batcher.dedup import RecentMessageIds
from metricbatch.batcher.self_metrics import BatchReport

logger = logging.getLogger(__name__)


class AggregatingSqsProcessor(BasePartialProcessor):
    """A partial batch processor for SQS whose records are merged and published together when the batch closes.

    The record handler collects a record into ``batcher`` (``MetricBatcher.add_record``); leaving the context
    publishes, re-queues and sets aside (``MetricBatcher.finish``).

    As Powertools' own processors do, it raises ``BatchProcessingError`` when every record of the batch failed
    (Lambda then retries the whole batch); otherwise ``response()`` lists the failed records.
    """

    def __init__(self, batcher: MetricBatcher) -> None:
        super().__init__()
        self.batcher = batcher
        self.batch_response: PartialItemFailureResponse = {"batchItemFailures": []}

    def response(self) -> PartialItemFailureResponse:
        return self.batch_response

    def _prepare(self) -> None:
        self.success_messages.clear()
        self.fail_messages.clear()
        self.exceptions.clear()
        self.batch_response = {"batchItemFailures": []}

    def _process_record(self, record: dict[str, Any]) -> SuccessResponse | FailureResponse:
        sqs_record = SQSRecord(record)
        try:
            result = self.handler(sqs_record)
        except Exception:
            logger.exception("record %s could not be read; SQS will redeliver it", sqs_record.message_id)
            return self.failure_handler(sqs_record, sys.exc_info())
        return self.success_handler(sqs_record, result)

    async def _async_process_record(self, record: dict[str, Any]) -> SuccessResponse | FailureResponse:
        raise NotImplementedError("the batcher processes records synchronously")

    def _clean(self) -> None:
        already_failed = {record.message_id for record in self.fail_messages if isinstance(record, SQSRecord)}
        failed = self.batcher.finish(exclude=already_failed)
        if failed and len(failed) == len(self.records):
            raise BatchProcessingError(
                msg=f"All {len(failed)} records failed: none could be published, re-queued or set aside",
                child_exceptions=self.exceptions,
            )
        self.batch_response = {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def process_sqs_event(
    event: dict[str, Any],
    context: Any,
    *,
    cloudwatch: Any,
    sqs: Any,
    config: BatcherConfig,
    queue_url_cache: dict[str, str] | None = None,
    on_report: Callable[[BatchReport], None] | None = None,
    settled_ids: RecentMessageIds | None = None,
) -> tuple[PartialItemFailureResponse, BatchReport]:
    """Handle one SQS event; returns the partial batch response and what was done.

    ``on_report`` sees the report once, even when the whole batch fails (``BatchProcessingError`` then propagates).
    """

    def time_left() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    batcher = MetricBatcher(
        config,
        cloudwatch=cloudwatch,
        sqs=sqs,
        time_left=time_left if context is not None else None,
        queue_url_cache=queue_url_cache,
        settled_ids=settled_ids,
    )
    records = event.get("Records")
    if not records or not isinstance(records, list):
        raise UnexpectedBatchTypeError("an SQS event needs a non-empty 'Records' list")

    def record_handler(record: SQSRecord) -> None:
        batcher.add_record(
            record.message_id,
            record.body,
            sent_timestamp_ms=record.attributes.sent_timestamp,
            event_source_arn=record.event_source_arn,
        )

    processor = AggregatingSqsProcessor(batcher)
    try:
        with processor(records, record_handler, context):
            processor.process()
    finally:
        if on_report is not None:
            on_report(batcher.report)
    return processor.response(), batcher.report

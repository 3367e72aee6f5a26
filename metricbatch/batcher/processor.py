"""Driving MetricBatcher from a Lambda SQS event with Powertools' batch utility (partial batch responses)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from metricbatch.batcher.batcher import BatcherConfig, BatchReport, MetricBatcher, RecentMessageIds
from metricbatch.exceptions import MetricBatchError


class RecordNotPublishedError(MetricBatchError):
    """A record whose datums could be neither published, re-queued nor set aside; SQS will redeliver it."""


class AggregatingBatchProcessor(BatchProcessor):
    """Powertools' SQS BatchProcessor, but records are merged and published together when the batch closes.

    The record handler only parses and validates; ``_clean`` (run on leaving the context) publishes the whole
    batch through MetricBatcher and adds the records it could not settle to the batch item failures.
    """

    def __init__(self, batcher: MetricBatcher) -> None:
        super().__init__(event_type=EventType.SQS)
        self.batcher = batcher

    def _clean(self) -> None:
        already_failed = {getattr(record, "message_id", "") for record in self.fail_messages}
        records_by_id = {record["messageId"]: record for record in self.records}
        for message_id in self.batcher.finish(exclude=already_failed):
            if message_id in already_failed:
                continue
            self.fail_messages.append(SQSRecord(records_by_id[message_id]))
            try:
                raise RecordNotPublishedError(f"record {message_id} could not be published or re-queued")
            except RecordNotPublishedError:
                self.exceptions.append(sys.exc_info())
        super()._clean()  # type: ignore[no-untyped-call]


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
) -> tuple[dict[str, Any], BatchReport]:
    """Handle one SQS event; returns the partial batch response and what was done.

    ``on_report`` sees the report even when the whole batch fails (Powertools then raises BatchProcessingError).
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

    def record_handler(record: SQSRecord) -> None:
        batcher.add_record(
            record.message_id,
            record.body,
            sent_timestamp_ms=record.attributes.sent_timestamp,
            event_source_arn=record.event_source_arn,
        )

    processor = AggregatingBatchProcessor(batcher)
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        if on_report is not None:
            on_report(batcher.report)
    return dict(response), batcher.report

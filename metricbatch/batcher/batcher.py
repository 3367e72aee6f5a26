"""The batcher's logic: one SQS batch of wire messages in, the fewest valid PutMetricData calls out.

Bad input never costs good data: unparseable bodies, invalid datums and foreign namespaces are set aside in the
DLQ with their reason; every valid datum is published exactly once. Datums CloudWatch cannot take right now are
re-queued as a new message of just those datums (with an attempt count), so nothing is published twice.

``add_record`` collects (``collect.py``); ``finish`` sets aside, merges, publishes and settles (``settle.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from metricbatch.batcher.collect import Record, RecordCollector
from metricbatch.batcher.config import MAX_REQUEUE_ATTEMPTS, BatcherConfig
from metricbatch.batcher.dedup import RecentMessageIds
from metricbatch.batcher.self_metrics import BatchReport
from metricbatch.batcher.settle import Settler
from metricbatch.cloudwatch.aggregation import Datum, DatumAggregator
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.publisher import CloudWatchPublisher, PublishOutcome

logger = logging.getLogger(__name__)

__all__ = ["MAX_REQUEUE_ATTEMPTS", "BatchReport", "BatcherConfig", "MetricBatcher", "RecentMessageIds"]


class MetricBatcher:
    """Collects the records of one batch, then publishes, sets aside and re-queues in ``finish()``."""

    def __init__(
        self,
        config: BatcherConfig,
        *,
        cloudwatch: Any,
        sqs: Any,
        time_left: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        queue_url_cache: dict[str, str] | None = None,
        settled_ids: RecentMessageIds | None = None,
    ) -> None:
        self._config = config
        self._cloudwatch = cloudwatch
        self._time_left = time_left
        self._sleep = sleep
        self._settled = settled_ids
        self._collector = RecordCollector(config.allowed_namespaces, clock)
        self._settler = Settler(
            config,
            sqs,
            time_left=time_left,
            sleep=sleep,
            queue_url_cache=queue_url_cache if queue_url_cache is not None else {},
        )
        self._records: list[Record] = []
        self._ids_in_batch: dict[str, int] = {}
        self.report = BatchReport()

    # -- collecting ---------------------------------------------------------------------------------------------
    def add_record(
        self,
        message_id: str,
        body: str,
        *,
        sent_timestamp_ms: str | int | None = None,
        event_source_arn: str | None = None,
    ) -> None:
        """Parse and validate one SQS record; invalid parts are queued for the DLQ, nothing is sent yet."""
        record = Record(index=len(self._records), message_id=message_id, source_arn=event_source_arn)
        self._records.append(record)
        self.report.records += 1
        if self._is_duplicate(record):
            self.report.duplicate_messages += 1
            return
        received = self._collector.collect(record, body, sent_timestamp_ms)
        if record.attempt == 0:  # a re-queued message carries samples received before
            self.report.metrics_received += received
        self.report.metrics_rejected += received - record.samples

    def _is_duplicate(self, record: Record) -> bool:
        # At-least-once delivery: a message seen earlier in this batch, or settled by this sandbox before, is not
        # published again. A copy in this batch shares the fate of the first (deleting either deletes both).
        first = self._ids_in_batch.setdefault(record.message_id, record.index)
        if first != record.index:
            record.duplicate_of = first
            return True
        if self._settled is not None and record.message_id in self._settled:
            logger.info("message %s was settled before; not publishing it again", record.message_id)
            return True
        return False

    # -- finishing ----------------------------------------------------------------------------------------------
    def finish(self, exclude: Collection[str] = frozenset()) -> list[str]:
        """Set aside, publish and re-queue; return the message ids to report as batch item failures.

        Records in ``exclude`` (already failed by the caller) contribute nothing and are reported as failed.
        """
        failed = {r.index for r in self._records if r.message_id in exclude}
        # Set-asides first: a record whose bad part cannot reach the DLQ fails whole, before any of it is sent.
        failed |= self._settler.set_aside([m for r in self._records if r.index not in failed for m in r.set_aside])
        outcome = self._publish(self._merge(failed))
        failed |= self._settler.leftovers(outcome, self._next_attempt, self._source_arn())
        self._account(outcome, failed)
        return self._conclude(failed)

    def _merge(self, failed: set[int]) -> list[Datum]:
        aggregator = DatumAggregator()
        for record in self._records:
            if record.index not in failed:
                aggregator.add_all(record.metrics, record.index)
        return aggregator.datums()

    def _publish(self, datums: list[Datum]) -> PublishOutcome:
        publisher = CloudWatchPublisher(
            self._cloudwatch, time_left=self._time_left, reserve_seconds=self._config.reserve_seconds, sleep=self._sleep
        )
        return publisher.publish(pack_requests(datums))

    def _next_attempt(self, datum: Datum) -> int:
        return max((self._records[i].attempt for i in datum.sources), default=0) + 1

    def _source_arn(self) -> str | None:
        return next((r.source_arn for r in self._records if r.source_arn), None)

    def _account(self, outcome: PublishOutcome, failed: set[int]) -> None:
        report = self.report
        report.put_metric_data_calls = outcome.calls
        report.put_metric_data_retries = outcome.retries
        report.datums_published = len(outcome.published)
        published = sum(d.sample_count for d in outcome.published)
        report.metrics_rejected += sum(d.sample_count for d, _ in outcome.rejected)
        report.messages_set_aside = self._settler.messages_set_aside
        report.messages_requeued = self._settler.messages_requeued
        partially = {i for d in outcome.published for i in d.sources} & failed
        if partially:
            # Their published datums will be published again when SQS redelivers them; count those samples then.
            logger.error(
                "%d record(s) had datums published but others could not be re-queued; they will be redelivered "
                "and their published datums may be published twice",
                len(partially),
            )
            published -= self._published_samples_of(partially, outcome.published)
        report.metrics_published = published

    def _published_samples_of(self, records: set[int], published: list[Datum]) -> float:
        """Samples of these records that went out in ``published`` (by series and bucket; a bucket split into
        several datums counts whole if any of them went out: the saving is never overstated)."""
        buckets = {(d.series, int(d.timestamp // d.resolution)) for d in published}
        samples = 0.0
        for index in records:
            for series, timestamp, values, counts in self._records[index].metrics:
                if (series, int(timestamp // series.resolution)) in buckets:
                    samples += len(values) if counts is None else sum(counts)
        return samples

    def _conclude(self, failed: set[int]) -> list[str]:
        failed.update(r.index for r in self._records if r.duplicate_of is not None and r.duplicate_of in failed)
        if self._settled is not None:
            for record in self._records:
                if record.index not in failed:
                    self._settled.add(record.message_id)
        self.report.failed_records = len(failed)
        return [self._records[i].message_id for i in sorted(failed)]

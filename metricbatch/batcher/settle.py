"""Settling what could not be published: set-asides to the DLQ, unsent datums back on the queue (or, past the
re-queue limit, to the DLQ), and which records must fail because their data found no way out.

Every outgoing message carries the indices of the records its data came from (``OutgoingMessage.context``); a
message that cannot be delivered fails those records, so SQS redelivers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from metricbatch.aws.chunking import chunked
from metricbatch.aws.sqs import OutgoingMessage, SqsBatchSender
from metricbatch.batcher.collect import MAX_REASON_CHARS
from metricbatch.batcher.config import BatcherConfig
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.cloudwatch.publisher import PublishOutcome
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.wire import (
    ATTEMPT_FIELD_BYTES,
    ATTR_REASON,
    ATTR_RULE,
    ENVELOPE_BYTES,
    datum_to_wire,
    envelope_of,
    metric_json,
)

logger = logging.getLogger(__name__)

# Room for the metrics of one re-queued message.
_REQUEUE_BYTES: Final = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES - ENVELOPE_BYTES - ATTEMPT_FIELD_BYTES


def datum_fragment(datum: Datum) -> str:
    """A merged datum as one wire metric (``values``/``counts``), serialized."""
    return metric_json(datum_to_wire(datum.series, datum.timestamp, datum.values, datum.counts))


def requeue_messages(unsent: list[tuple[Datum, int]]) -> list[OutgoingMessage]:
    """Unsent datums with their next attempt number, as few messages per attempt as the size limit allows."""
    by_attempt: dict[int, list[tuple[str, frozenset[int], int]]] = {}
    for datum, attempt in unsent:
        fragment = datum_fragment(datum)
        by_attempt.setdefault(attempt, []).append((fragment, datum.sources, len(fragment) + 1))  # +1: the comma
    messages = []
    for attempt, items in by_attempt.items():
        for run in chunked(items, itemgetter(2), max_bytes=_REQUEUE_BYTES):
            body = envelope_of([fragment for fragment, _, _ in run], attempt)
            messages.append(OutgoingMessage(body=body, context=frozenset().union(*(s for _, s, _ in run))))
    return messages


def dead_letter_message(datum: Datum, rule: str, reason: str, attempt: int = 0) -> OutgoingMessage:
    """One datum for the DLQ, with the rule and reason it is there for."""
    return OutgoingMessage(
        body=envelope_of([datum_fragment(datum)], attempt),
        attributes={ATTR_RULE: rule, ATTR_REASON: reason[:MAX_REASON_CHARS]},
        context=datum.sources,
    )


class Settler:
    """Sends set-asides, dead letters and re-queues for one batch; answers which records could not be settled."""

    def __init__(
        self,
        config: BatcherConfig,
        sqs: Any,
        *,
        time_left: Callable[[], float] | None,
        sleep: Callable[[float], None],
        queue_url_cache: dict[str, str],
    ) -> None:
        self._config = config
        self._sqs = sqs
        self._time_left = time_left
        self._sleep = sleep
        self._queue_urls = queue_url_cache
        self.messages_set_aside = 0
        self.messages_requeued = 0

    def set_aside(self, messages: list[OutgoingMessage]) -> set[int]:
        """Send to the DLQ; the records of what could not be delivered (or with no DLQ configured) fail."""
        if not messages:
            return set()
        if not self._config.dlq_url:
            logger.error("METRICBATCH_DLQ_URL is not set; %d set-aside message(s) fail their records", len(messages))
            return _records_of(messages)
        sent, failed = self._deliver(self._config.dlq_url, messages, "set aside in the DLQ")
        self.messages_set_aside += sent
        return failed

    def leftovers(
        self, outcome: PublishOutcome, next_attempt: Callable[[Datum], int], source_arn: str | None
    ) -> set[int]:
        """What CloudWatch refused goes to the DLQ; what it could not take now is re-queued (or, past the re-queue
        limit, goes to the DLQ). Returns the records whose data found no way out."""
        dead = [dead_letter_message(datum, "cloudwatch.rejected", reason) for datum, reason in outcome.rejected]
        unsent: list[tuple[Datum, int]] = []
        if outcome.unsent:
            logger.warning(
                "%d datum(s) could not be published (%s); re-queueing", len(outcome.unsent), outcome.last_error
            )
        for datum in outcome.unsent:
            attempt = next_attempt(datum)
            if attempt > self._config.max_requeue_attempts:
                reason = f"unpublished after {attempt - 1} re-queues; last error: {outcome.last_error}"
                dead.append(dead_letter_message(datum, "cloudwatch.unavailable", reason, attempt))
            else:
                unsent.append((datum, attempt))
        failed = self.set_aside(dead)
        return failed | self._requeue(requeue_messages(unsent), source_arn)

    def _requeue(self, messages: list[OutgoingMessage], source_arn: str | None) -> set[int]:
        if not messages:
            return set()
        queue_url = self._requeue_url(source_arn)
        if queue_url is None:
            return _records_of(messages)
        sent, failed = self._deliver(queue_url, messages, "re-queued")
        self.messages_requeued += sent
        return failed

    def _deliver(self, queue_url: str, messages: list[OutgoingMessage], what: str) -> tuple[int, set[int]]:
        """Send; returns how many went out and the records of those that did not (logged: SQS redelivers them)."""
        outcome = SqsBatchSender(self._sqs, queue_url, sleep=self._sleep, time_left=self._time_left).send(messages)
        if outcome.failed:
            logger.error(
                "%d message(s) could not be %s (%s); their records fail and will be redelivered",
                len(outcome.failed),
                what,
                outcome.last_error,
            )
        return len(outcome.sent), _records_of(outcome.failed)

    def _requeue_url(self, source_arn: str | None) -> str | None:
        if self._config.queue_url:
            return self._config.queue_url
        if source_arn is None:
            logger.error("no METRICBATCH_QUEUE_URL and no eventSourceARN: cannot re-queue")
            return None
        if source_arn not in self._queue_urls:
            parts = source_arn.split(":")
            try:
                response = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            except Exception:
                logger.exception("cannot resolve the queue URL of %s", source_arn)
                return None
            self._queue_urls[source_arn] = response["QueueUrl"]
        return self._queue_urls[source_arn]


def _records_of(messages: list[OutgoingMessage]) -> set[int]:
    records: set[int] = set()
    for message in messages:
        records.update(message.context)
    return records

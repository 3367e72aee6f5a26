"""Where the sender delivers: one small interface, implemented by SQS and by the direct PutMetricData fallback.

A destination takes wire entries and answers with what it delivered and what it could not. A chain tries each
destination in turn with what the previous one could not deliver; what is left after the last one is dropped.
The fallback is for outages (throttling, 5xx, connection loss): when SQS refuses for a reason no retry can fix (a
wrong setting: the queue does not exist, access denied, KMS, credentials, region) the chain stops and the entries
are held (``blocked``), never published directly. ``emf`` mode delivers through ``EmfDestination`` (emf.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from metricbatch.aws.retry import configuration_problem, error_code
from metricbatch.aws.sqs import SqsBatchSender
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.publisher import CloudWatchPublisher
from metricbatch.producer.counters import CounterName, Counts
from metricbatch.producer.encoding import WireEntry, pack_messages, samples_in
from metricbatch.shards import series_identity, shard_of
from metricbatch.validation import Series

logger = logging.getLogger(__name__)

ClientFor = Callable[[str], Any]  # "sqs" / "cloudwatch" -> a boto3 client of this process


@dataclass(slots=True)
class Delivery:
    """A destination's answer: metrics delivered, entries it could not deliver (and why), counters to add.

    ``blocked`` (a wrong setting, said in a sentence naming it) means no retry and no other destination should
    try the undelivered entries: they wait until the setting is fixed.
    """

    delivered: int = 0
    undelivered: list[WireEntry] = field(default_factory=list)
    error: str = ""
    counts: dict[CounterName, int] = field(default_factory=dict)
    blocked: str = ""


class Destination(Protocol):
    """Delivers wire entries; never raises (a failure is an undelivered entry with its error)."""

    @property
    def delivered_counter(self) -> CounterName: ...  # the stats() counter its delivered metrics add to

    def prepare(self) -> None: ...  # make clients ahead of the first delivery (may raise; deliver reports it)

    def deliver(self, entries: list[WireEntry]) -> Delivery: ...


class SqsDestination:
    """Wire-format messages to the pipeline's queue with SendMessageBatch (the normal path)."""

    delivered_counter: CounterName = "sent"

    def __init__(
        self,
        client_for: ClientFor,
        queue_url: str,
        *,
        max_message_bytes: int,
        attempts: int,
        sleep: Callable[[float], None],
    ) -> None:
        self._client_for = client_for
        self._queue_url = queue_url
        self._max_message_bytes = max_message_bytes
        self._attempts = attempts
        self._sleep = sleep

    def prepare(self) -> None:
        self._client_for("sqs")

    def deliver(self, entries: list[WireEntry]) -> Delivery:
        messages = pack_messages(entries, self._max_message_bytes)
        try:
            client = self._client_for("sqs")
            outcome = SqsBatchSender(client, self._queue_url, max_attempts=self._attempts, sleep=self._sleep).send(
                messages
            )
        except Exception as exc:  # the client could not be made: a wrong setting, or the fallback may still work
            logger.debug("cannot send to SQS: %s", exc)
            error = f"{error_code(exc)}: {exc}"
            return Delivery(
                undelivered=entries, error=error, counts={"send_errors": 1}, blocked=self._blocked(error_code(exc))
            )
        sent: list[WireEntry] = [entry for m in outcome.sent for entry in m.context]
        blocked = self._blocked(outcome.last_code, client) if outcome.failed else ""
        if outcome.failed and not blocked:
            logger.warning("SQS did not accept %d message(s): %s", len(outcome.failed), outcome.last_error)
        return Delivery(
            delivered=samples_in(sent),
            undelivered=[entry for m in outcome.failed for entry in m.context],
            error=outcome.last_error,
            counts={
                "sqs_requests": outcome.requests,
                "send_errors": outcome.errors,
                "messages_sent": len(outcome.sent),
                "wire_entries": len(sent),
                "wire_bytes": sum(len(m.body) for m in outcome.sent),
            },
            blocked=blocked,
        )

    def _blocked(self, code: str, client: Any = None) -> str:
        """For an error no retry can fix: one sentence naming the queue, the region and what to check; else ""."""
        problem = configuration_problem(code)
        if problem is None:
            return ""
        region = getattr(getattr(client, "meta", None), "region_name", None)
        where = f" (region {region})" if region else ""
        return f"SQS refused the queue {self._queue_url}{where}: {code}: {problem}"


class ShardedSqsDestination:
    """One SqsDestination per shard queue; each entry goes to the shard of its series (``metricbatch.shards``).

    A shard that SQS cannot take answers like a single queue does: its entries go on to the fallback, or are held
    when a wrong setting blocks it; the other shards' entries are delivered meanwhile.
    """

    delivered_counter: CounterName = "sent"
    _MAX_CACHED = 100_000

    def __init__(self, shards: Sequence[SqsDestination]) -> None:
        self._shards = tuple(shards)
        self._shard_of: dict[Series, int] = {}

    def prepare(self) -> None:
        self._shards[0].prepare()

    def shard(self, key: Series) -> int:
        index = self._shard_of.get(key)
        if index is None:
            if len(self._shard_of) >= self._MAX_CACHED:
                self._shard_of.clear()
            index = self._shard_of[key] = shard_of(series_identity(*key), len(self._shards))
        return index

    def deliver(self, entries: list[WireEntry]) -> Delivery:
        routed: list[list[WireEntry]] = [[] for _ in self._shards]
        for entry in entries:
            routed[self.shard(entry.series.key)].append(entry)
        total = Delivery()
        for destination, part in zip(self._shards, routed, strict=True):
            if not part:
                continue
            delivery = destination.deliver(part)
            total.delivered += delivery.delivered
            total.undelivered += delivery.undelivered
            total.error = delivery.error or total.error
            total.blocked = total.blocked or delivery.blocked
            _add(total.counts, delivery.counts)
        return total


class PutMetricDataDestination:
    """Direct PutMetricData, merged and packed within CloudWatch's limits (the fallback while SQS is down)."""

    delivered_counter: CounterName = "fallback_published"

    def __init__(self, client_for: ClientFor, *, sleep: Callable[[float], None]) -> None:
        self._client_for = client_for
        self._sleep = sleep

    def prepare(self) -> None:
        self._client_for("cloudwatch")

    def deliver(self, entries: list[WireEntry]) -> Delivery:
        datums = {id(datum): (datum, entry) for entry in entries for datum in (entry.datum(),)}
        try:
            publisher = CloudWatchPublisher(
                self._client_for("cloudwatch"), max_attempts=3, base_delay=0.2, max_delay=1.0, sleep=self._sleep
            )
            outcome = publisher.publish(pack_requests([datum for datum, _ in datums.values()]))
        except Exception as exc:
            logger.debug("fallback PutMetricData failed: %s", exc)
            return Delivery(undelivered=entries, error=f"{type(exc).__name__}: {exc}")
        published = {id(datum) for datum in outcome.published}
        return Delivery(
            delivered=sum(entry.samples for key, (_, entry) in datums.items() if key in published),
            undelivered=[entry for key, (_, entry) in datums.items() if key not in published],
            error=outcome.last_error or "; ".join(reason for _, reason in outcome.rejected[:1]),
            counts={"put_metric_data_calls": outcome.calls},
        )


@dataclass(slots=True)
class ChainResult:
    counts: dict[CounterName, int]
    dropped: int
    error: str
    blocked: str = ""  # a wrong setting stopped the chain: ``held`` waits for it to be fixed
    held: list[WireEntry] = field(default_factory=list)


class DeliveryChain:
    """Destinations in order of preference; each gets what the ones before it could not deliver."""

    def __init__(self, destinations: Sequence[Destination]) -> None:
        self._destinations = tuple(destinations)

    def prepare(self) -> None:
        """Only the first destination: the others are needed when it fails, and may be made then."""
        if self._destinations:
            self._destinations[0].prepare()

    def deliver(self, entries: list[WireEntry]) -> ChainResult:
        counts: dict[CounterName, int] = {}
        error = ""
        for destination in self._destinations:
            if not entries:
                break
            delivery = destination.deliver(entries)
            _add(counts, delivery.counts)
            _add(counts, {destination.delivered_counter: delivery.delivered})
            entries, error = delivery.undelivered, delivery.error or error
            if delivery.blocked and entries:
                return ChainResult(counts, 0, error, blocked=delivery.blocked, held=entries)
        dropped = samples_in(entries)
        if dropped:
            _add(counts, {"dropped": dropped, "dropped_undeliverable": dropped})
        return ChainResult(counts, dropped, error)


def _add(into: dict[CounterName, int], counts: Counts) -> None:
    for name, n in counts.items():
        into[name] = into.get(name, 0) + n


def sqs_with_fallback(
    client_for: ClientFor,
    queue_url: str | Sequence[str],
    *,
    max_message_bytes: int,
    attempts: int,
    fallback: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryChain:
    """The ``sqs`` mode: SQS first, PutMetricData directly while SQS is unavailable (unless ``fallback`` is off).

    With several queue URLs (a sharded deployment), each series goes to its shard's queue.
    """
    urls = (queue_url,) if isinstance(queue_url, str) else tuple(queue_url)
    queues = [
        SqsDestination(client_for, url, max_message_bytes=max_message_bytes, attempts=attempts, sleep=sleep)
        for url in urls
    ]
    sqs: Destination = queues[0] if len(queues) == 1 else ShardedSqsDestination(queues)
    return DeliveryChain([sqs, PutMetricDataDestination(client_for, sleep=sleep)] if fallback else [sqs])

"""instrument_boto3 with an sqs-mode producer: calls counted in the ApiCallTally reach the queue with each sender
round (no flush needed), in the minute they ended, exact under threads, bounded in memory."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber

from metricbatch import MetricProducer, instrument_boto3
from metricbatch.producer.call_tally import MAX_PENDING_CALLS, ApiCallTally
from metricbatch.testing import captured, clear

from ..conftest import QUEUE_URL, ProducerFactory
from ..fakes import FakeSqs

NS = "Unit/SdkTally"
SQS = ("SQS", "ListQueues")


@pytest.fixture(autouse=True)
def _empty_capture_store() -> Iterator[None]:
    clear()  # memory mode's store is the process's
    yield
    clear()


def _session() -> Any:
    return boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")


def _samples(fake_sqs: FakeSqs) -> Counter[tuple[str, str | None, float]]:
    """(metric name, ErrorType, value) -> samples, over every wire metric in the queue."""
    got: Counter[tuple[str, str | None, float]] = Counter()
    for metric in fake_sqs.metrics(QUEUE_URL):
        dims = dict(metric.get("dimensions", {}))
        if (dims.get("ServiceId"), dims.get("OperationName")) != SQS:
            continue
        values = metric["values"] if "values" in metric else [metric["value"]]
        counts = metric.get("counts", [1] * len(values))
        for value, count in zip(values, counts, strict=True):
            got[(metric["name"], dims.get("ErrorType"), value)] += int(count)
    return got


def _wait_for(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_counted_calls_reach_the_queue_with_the_sender_rounds_without_a_flush(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN an sqs-mode producer (rounds every 50 ms) that has sent nothing itself, and an instrumented client
    producer = make_producer(namespace=NS)
    session = _session()
    instrumentation = instrument_boto3(session, producer=producer, namespace=NS)
    client = session.client("sqs")
    with Stubber(client) as stubber:
        for _ in range(30):
            stubber.add_response("list_queues", {"QueueUrls": []})
        stubber.add_response("list_queues", {"QueueUrls": [], "ResponseMetadata": {"RetryAttempts": 2}})
        stubber.add_client_error("list_queues", service_error_code="ThrottlingException", http_status_code=400)
        # WHEN 32 calls are made (one retried twice, one throttled) and nobody calls flush()
        for _ in range(31):
            client.list_queues()
        with contextlib.suppress(client.exceptions.ClientError):
            client.list_queues()
    instrumentation.undo()

    # THEN the sender's rounds deliver all of them: 32 calls, one retried, one failed as Throttling
    def delivered() -> bool:
        return sum(n for (name, _, _), n in _samples(fake_sqs).items() if name == "ApiCallSuccessful") == 33

    assert _wait_for(delivered), _samples(fake_sqs)
    got = _samples(fake_sqs)
    assert got[("ApiCallSuccessful", None, 1.0)] == 31
    assert got[("ApiCallSuccessful", None, 0.0)] == 1  # the ServiceId, OperationName roll-up of the failed call
    assert got[("ApiCallSuccessful", "Throttling", 0.0)] == 1
    assert got[("RetryCount", None, 2.0)] == 1
    assert got[("RetryCount", None, 0.0)] == 31
    assert sum(n for (name, error, _), n in got.items() if name == "ApiCallDuration" and error is None) == 32
    assert producer.stats()["dropped"] == 0


class _WallClock:
    """The producer's wall clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_each_call_is_counted_in_the_minute_it_ended_on_the_producers_clock(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    minute = 1_800_000_000.0  # a minute boundary (divisible by 60)
    clock = _WallClock(minute - 0.5)
    producer = make_producer(namespace=NS, clock=clock, flush_interval=3600)
    session = _session()
    instrument_boto3(session, producer=producer, namespace=NS)
    client = session.client("sqs")
    with Stubber(client) as stubber:
        for _ in range(5):
            stubber.add_response("list_queues", {"QueueUrls": []})
        # WHEN two calls end just before the minute and three just after, all counted in one round
        for i in range(5):
            clock.now = minute - 0.5 if i < 2 else minute + 0.5
            client.list_queues()
    assert producer.flush(timeout=5)
    # THEN each minute holds its own calls
    per_minute: Counter[float] = Counter()
    for metric in fake_sqs.metrics(QUEUE_URL):
        if metric["name"] == "ApiCallSuccessful":
            stamp = metric["timestamp"]
            per_minute[stamp - stamp % 60] += sum(metric.get("counts", [1] * len(metric.get("values", [0]))))
    assert per_minute == {minute - 60: 2, minute: 3}


def test_calls_from_many_threads_are_each_counted_once_while_rounds_collect(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    producer = make_producer(namespace=NS, flush_interval=0.01)
    session = _session()
    instrumentation = instrument_boto3(session, producer=producer, namespace=NS)
    client = session.client("sqs")
    client.meta.events.register(
        "before-call.sqs.ListQueues", lambda **_: (type("R", (), {"status_code": 200})(), {"QueueUrls": []})
    )
    threads, per_thread = 6, 400
    # WHEN six threads call at once while the sender collects every 10 ms
    workers = [
        threading.Thread(target=lambda: [client.list_queues() for _ in range(per_thread)]) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    instrumentation.undo()
    assert producer.flush(timeout=10)
    # THEN every call is in the queue exactly once
    got = _samples(fake_sqs)
    assert got[("ApiCallSuccessful", None, 1.0)] == threads * per_thread
    assert got[("RetryCount", None, 0.0)] == threads * per_thread
    assert producer.stats()["accepted"] == 3 * threads * per_thread


def test_a_full_tally_is_counted_on_the_calling_thread_so_memory_stays_bounded(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN a producer whose rounds are an hour apart
    producer = make_producer(namespace=NS, flush_interval=3600)
    rounds = producer._rounds
    assert rounds is not None
    duration, successful, retries = (producer.series(name, namespace=NS)._series for name in ("D", "S", "R"))
    tally = ApiCallTally(rounds, lambda key: (duration, successful, retries, 1.0), time.time, on_error=lambda exc: None)
    rounds.add_collector(tally)
    # WHEN more calls are noted than a tally holds
    for i in range(MAX_PENDING_CALLS + 10):
        tally.add((*SQS, None), float(i % 7), 0)
    # THEN the calling thread counted them into the buffer (its bound applies there) and the queue stays short
    assert len(tally.pending) < MAX_PENDING_CALLS
    assert producer.stats()["accepted"] >= 3 * MAX_PENDING_CALLS
    assert producer.flush(timeout=10)
    assert producer.stats()["accepted"] == 3 * (MAX_PENDING_CALLS + 10)


def test_memory_mode_still_records_each_call_at_once() -> None:
    producer = MetricProducer(mode="memory", namespace=NS)
    session = _session()
    instrument_boto3(session, producer=producer, namespace=NS)
    client = session.client("sqs")
    with Stubber(client) as stubber:
        stubber.add_response("list_queues", {"QueueUrls": []})
        client.list_queues()
    assert producer.stats()["captured"] == 3  # no round, no flush: captured() shows it now


def test_a_call_botocore_rejects_before_sending_is_a_failed_call_of_error_type_other() -> None:
    producer = MetricProducer(mode="memory", namespace=NS)
    session = _session()
    instrumentation = instrument_boto3(session, producer=producer, namespace=NS)
    client = session.client("sqs")
    try:
        with pytest.raises(ParamValidationError):
            client.get_queue_url()  # QueueName missing: no request is made
    finally:
        instrumentation.undo()
    got = [(m.name, m.value, dict(m.dimensions)) for m in captured() if m.name == "ApiCallSuccessful"]
    base = {"ServiceId": "SQS", "OperationName": "GetQueueUrl"}
    assert got == [("ApiCallSuccessful", 0.0, {**base, "ErrorType": "Other"}), ("ApiCallSuccessful", 0.0, base)]


def test_async_clients_are_left_alone() -> None:
    # GIVEN an instrumented session, and a client class built on an async base (as aiobotocore's are)
    producer = MetricProducer(mode="memory", namespace=NS)
    session = _session()
    instrumentation = instrument_boto3(session, producer=producer, namespace=NS)

    class AsyncBase(BaseClient):
        async def _make_api_call(self, operation_name: str, api_params: Any) -> Any:
            return {}

    emitter = session._session.get_component("event_emitter")
    try:
        # WHEN botocore (or aiobotocore) makes client classes
        made_async: dict[str, Any] = {}
        emitter.emit("creating-client-class.sqs", class_attributes=made_async, base_classes=[AsyncBase])
        made_sync: dict[str, Any] = {}
        emitter.emit("creating-client-class.sqs", class_attributes=made_sync, base_classes=[BaseClient])
        # and an async client made before is found
        async_client = object.__new__(AsyncBase)
        instrumentation.attach_client(async_client)
    finally:
        instrumentation.undo()
    # THEN only botocore's own get the measuring _make_api_call; the async ones keep theirs
    assert "_make_api_call" not in made_async
    assert "_make_api_call" in made_sync
    assert "_make_api_call" not in vars(async_client)

"""Issue 27, sharded queues: each series goes to its shard's queue; nothing is lost or doubled by sharding.

The module's local pipeline runs with ``shards`` (as ``-c shards=4`` deploys): a queue and a poller per shard.

GIVEN shard queues in the embedded AWS (each drained by its own event source poller running the real handler,
CloudWatch behind the strict stand-in) WHEN producers route by series THEN every sum reads back exact.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from functional_support import Expected, mismatches, unique_namespace

from metricbatch.deploy import settings_for
from metricbatch.emulator.embedded import PipelineQueues
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.env import QUEUE_URLS, ROUND_SECONDS
from metricbatch.producer.producer import MetricProducer
from metricbatch.shards import series_identity, shard_of
from metricbatch.worker.poller import SqsEventSourcePoller

SHARDS = 4
# The local pipeline with the stack's scale setting: a queue and a poller per shard, the fleet batch size.
PIPELINE_OPTIONS = {"settings": settings_for("dev").with_overrides({"shards": SHARDS}), "window_seconds": 0.0}


def _shard_queues(pipeline: LocalPipeline, count: int = SHARDS) -> list[str]:
    """Shard 0 is the pipeline's first queue (as in the stack: turning shards on keeps the first queue)."""
    return list(pipeline.queue_urls[:count])


def _drain(pipeline: LocalPipeline, urls: list[str]) -> None:
    from metricbatch.batcher.handler import handler

    for url in urls:
        SqsEventSourcePoller(
            pipeline.sqs, url, handler, config=pipeline.poller_config, region=pipeline.aws.region
        ).drain(timeout=60)


def _send(
    producer: MetricProducer, namespace: str, expected: Expected, *, series: int = 40, per_series: int = 5
) -> None:
    now = time.time()
    for i in range(series * per_series):
        dims = {"Host": f"h{i % series}"}
        value = (i % 7) * 0.25
        producer.send_metric("Latency", value, namespace=namespace, dimensions=dims, timestamp=now)
        expected.add(namespace, "Latency", value, dims)


def _shard_of_entry(entry: dict[str, Any]) -> int:
    identity = series_identity(
        entry["namespace"], entry["name"], entry.get("dimensions", {}).items(), entry.get("unit", "None"),
        entry.get("resolution", 60),
    )  # fmt: skip
    return shard_of(identity, SHARDS)


def test_each_series_goes_to_its_shard_queue_and_every_sum_reads_back_exact(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    urls = _shard_queues(pipeline)
    namespace, expected = unique_namespace("Shards"), Expected.empty()
    # GIVEN a producer configured with the shard list the stack outputs (METRICBATCH_QUEUE_URLS)
    producer = MetricProducer(
        queue_urls=tuple(urls), mode="sqs", sqs_client=pipeline.sqs, cloudwatch_client=pipeline.cloudwatch
    )
    _send(producer, namespace, expected)
    assert producer.flush(timeout=10)
    producer.close()
    # THEN each queue holds only its own series, every shard some, and no message is in two places
    seen: dict[tuple[str, str], int] = {}
    for index, url in enumerate(urls):
        for message in _look(pipeline, url):
            for entry in json.loads(message["Body"])["metrics"]:
                assert _shard_of_entry(entry) == index
                seen[(entry["namespace"], entry["dimensions"]["Host"])] = index
    assert len(seen) == 40 and set(seen.values()) == set(range(SHARDS))
    assert producer.stats()["sent"] == expected.metrics
    # WHEN each shard's batcher drains its queue
    _drain(pipeline, urls)
    assert mismatches(pipeline, expected) == {}


def _look(pipeline: LocalPipeline, url: str) -> list[dict[str, Any]]:
    """Every message of a queue, left visible (receives with a visibility timeout of 0 until all were seen)."""
    depth = pipeline.queue_depth(url)
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(20 * depth + 5):
        if len(seen) >= depth:
            break
        response = pipeline.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        seen.update({m["MessageId"]: m for m in response.get("Messages", [])})
    assert len(seen) == depth
    return list(seen.values())


def test_a_shard_queue_that_is_missing_holds_its_series_while_the_others_deliver(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    urls = _shard_queues(pipeline, SHARDS - 1)
    missing_name = f"shard-missing-{uuid.uuid4().hex[:6]}"
    missing_url = urls[0].rsplit("/", 1)[0] + "/" + missing_name
    urls.append(missing_url)
    namespace, expected = unique_namespace("ShardDown"), Expected.empty()
    producer = MetricProducer(
        queue_urls=tuple(urls), mode="sqs", sqs_client=pipeline.sqs, cloudwatch_client=pipeline.cloudwatch,
        queue_retry_interval=0.5,
    )  # fmt: skip
    # GIVEN the last shard's queue does not exist (a wrong setting: held, never published directly)
    _send(producer, namespace, expected)
    assert producer.flush(timeout=5) is False
    stats = producer.stats()
    assert "does not exist" in stats["config_error"] or "NonExistentQueue" in stats["config_error"]
    assert 0 < stats["sent"] < expected.metrics and stats["dropped"] == 0 and stats["fallback_published"] == 0
    # WHEN the queue is created, the held series go to it on the next retry
    PipelineQueues(pipeline.sqs, name=missing_name)
    time.sleep(0.6)
    assert producer.flush(timeout=10)
    producer.close()
    assert producer.stats()["sent"] == expected.metrics
    # THEN every sum reads back exact once all shards are drained
    _drain(pipeline, urls)
    assert mismatches(pipeline, expected) == {}


def test_sqs_failing_for_the_shards_falls_back_to_put_metric_data_without_loss(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    urls = _shard_queues(pipeline)
    namespace, expected = unique_namespace("ShardFallback"), Expected.empty()
    producer = MetricProducer(
        queue_urls=tuple(urls), mode="sqs", sqs_client=pipeline.sqs, cloudwatch_client=pipeline.cloudwatch,
        send_attempts=1,
    )  # fmt: skip
    # GIVEN SQS answers 503 to the first shards' SendMessageBatch, botocore's 3 attempts each included
    pipeline.aws.faults.add(Fault("sqs:SendMessageBatch", "unavailable", remaining=6))
    _send(producer, namespace, expected)
    assert producer.flush(timeout=10)
    producer.close()
    stats = producer.stats()
    # THEN the two shards' series went out directly, the others through their queues, and nothing twice
    assert stats["fallback_published"] > 0 and stats["sent"] > 0
    assert stats["fallback_published"] + stats["sent"] == expected.metrics and stats["dropped"] == 0
    _drain(pipeline, urls)
    assert mismatches(pipeline, expected) == {}


@pytest.mark.parametrize("direction", ["one-to-four", "four-to-one"])
def test_resharding_while_producers_run_loses_and_doubles_nothing(
    clean_pipeline: LocalPipeline, direction: str
) -> None:
    pipeline = clean_pipeline
    urls = _shard_queues(pipeline)
    before, after = ((pipeline.queue_url,), tuple(urls))[:: 1 if direction == "one-to-four" else -1]
    namespace, expected = unique_namespace("Reshard"), Expected.empty()
    lock = threading.Lock()

    def run(queue_urls: tuple[str, ...], rounds: int) -> None:
        producer = MetricProducer(
            queue_urls=queue_urls, mode="sqs", sqs_client=pipeline.sqs, cloudwatch_client=pipeline.cloudwatch,
            flush_interval=0.05,
        )  # fmt: skip
        local = Expected.empty()
        for _ in range(rounds):
            _send(producer, namespace, local, series=20, per_series=2)
            time.sleep(0.01)
        assert producer.flush(timeout=10)
        producer.close()
        with lock:
            for key, (total, count) in local.totals.items():
                entry = expected.totals.setdefault(key, [0.0, 0.0])
                entry[0] += total
                entry[1] += count

    # GIVEN old producers still on the old shard list while new ones start with the new list
    threads = [threading.Thread(target=run, args=(urls_, 10)) for urls_ in (before, before, after, after)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # WHEN every queue of either list drains (a shard being removed is drained before it is deleted)
    _drain(pipeline, urls)
    # THEN every sum and count reads back exact
    assert expected.metrics == 4 * 10 * 40
    assert mismatches(pipeline, expected) == {}


def test_sharded_local_pipeline_routes_and_publishes_every_sample_once(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    # GIVEN the stack's settings with shards: a queue per shard, the fleet batch size, the producers' environment
    assert len(pipeline.queue_urls) == SHARDS and pipeline.poller_config.batch_size == 10_000
    env = pipeline.env()
    assert env[QUEUE_URLS].split(",") == list(pipeline.queue_urls) and env[ROUND_SECONDS] == "60"
    namespace, expected = unique_namespace("ShardLocal"), Expected.empty()
    # WHEN three producers of the pipeline emit overlapping series
    producers = [pipeline.producer() for _ in range(3)]
    now = time.time()
    for i in range(600):
        dims = {"Route": f"r{i % 30}"}
        value = (i % 9) * 0.5
        producers[i % 3].send_metric("Latency", value, namespace=namespace, dimensions=dims, timestamp=now)
        expected.add(namespace, "Latency", value, dims)
    for producer in producers:
        assert producer.flush(timeout=10)
        producer.close()
    # THEN every shard's queue got some of them, and once the shards' pollers drain, every sum is exact
    assert all(pipeline.queue_depth(url) > 0 for url in pipeline.queue_urls)
    pipeline.drain(timeout=60)
    assert all(pipeline.queue_depth(url) == 0 for url in pipeline.queue_urls)
    assert mismatches(pipeline, expected) == {}
    assert pipeline.dlq_depth() == 0

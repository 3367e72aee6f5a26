"""Issue 27: shard routing (shared vector with Node), shard configuration, and the minute-aligned round."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from metricbatch.producer.config import ProducerConfig
from metricbatch.shards import fnv1a_32, series_identity, shard_of

from ..conftest import ProducerFactory
from ..fakes import FakeSqs

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "shards.json").read_text())
URLS = ("https://example/q0", "https://example/q1", "https://example/q2")


def test_fnv1a_matches_the_reference_values() -> None:
    for case in VECTORS["fnv1a_32_reference"]:
        assert fnv1a_32(case["input"].encode()) == case["hash"]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["identity"][:40])
def test_routing_vector(case: dict[str, Any]) -> None:
    identity = series_identity(
        case["namespace"], case["name"], case["dimensions"].items(), case["unit"], case["resolution"]
    )
    assert identity == case["identity"]
    assert fnv1a_32(identity.encode()) == case["fnv1a_32"]
    assert {str(n): shard_of(identity, n) for n in (1, 2, 3, 8, 64)} == case["shard"]


def test_dimension_order_does_not_change_the_shard() -> None:
    a = series_identity("N", "M", [("B", "2"), ("A", "1")], "None", 60)
    b = series_identity("N", "M", [("A", "1"), ("B", "2")], "None", 60)
    assert a == b


def test_environment_configures_the_shards_and_the_round() -> None:
    config = ProducerConfig.from_env({"METRICBATCH_QUEUE_URLS": " q0, q1 ,q2", "METRICBATCH_ROUND_SECONDS": "60"})
    assert config.shard_urls == ("q0", "q1", "q2") and config.queue_url == "q0" and config.mode == "sqs"
    assert config.flush_interval == 60 and config.minute_aligned
    # explicit arguments beat the environment
    explicit = ProducerConfig.from_env({"METRICBATCH_QUEUE_URLS": "q0,q1", "METRICBATCH_ROUND_SECONDS": "60"},
                                       queue_url="mine", flush_interval=5.0)  # fmt: skip
    assert explicit.shard_urls == ("mine",) and not explicit.minute_aligned
    # a wrong round never raises in the caller: the default round
    assert (
        ProducerConfig.from_env({"METRICBATCH_QUEUE_URL": "q", "METRICBATCH_ROUND_SECONDS": "soon"}).flush_interval == 5
    )


def test_each_series_goes_to_one_shard_queue(make_producer: ProducerFactory, fake_sqs: FakeSqs) -> None:
    producer = make_producer(queue_url=None, queue_urls=URLS)
    for host in range(30):
        for value in (1.0, 2.0):
            producer.send_metric("Latency", value, dimensions={"Host": f"h{host}"})
    assert producer.flush(timeout=5)
    total = 0
    for index, url in enumerate(URLS):
        for metric in fake_sqs.metrics(url):
            identity = series_identity("Unit/Test", "Latency", metric["dimensions"].items(), "None", 60)
            assert shard_of(identity, len(URLS)) == index
            total += sum(metric.get("counts", [1] * len(metric["values"]))) if "values" in metric else 1
    assert total == 60 and all(fake_sqs.metrics(url) for url in URLS)


class WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_minute_round_sends_the_finished_minute_once_and_keeps_the_current_one(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN a producer on a 60 s round, 0.3 s before a minute boundary on its wall clock
    boundary = 1_800_000_000.0 - 1_800_000_000.0 % 60 + 60
    clock = WallClock(boundary - 0.3)
    producer = make_producer(flush_interval=60.0, clock=clock)
    for value in range(10):
        producer.send_metric("Requests", float(value))
    # WHEN the boundary passes and the next minute's metrics start
    clock.now = boundary + 0.1
    for value in range(5):
        producer.send_metric("Requests", float(value))
    deadline = time.monotonic() + 5
    while not fake_sqs.metrics("https://example/q") and time.monotonic() < deadline:
        time.sleep(0.02)
    # THEN the round right after the boundary sent the finished minute as one wire metric, the current one waits
    sent = fake_sqs.metrics("https://example/q")
    assert [(m["timestamp"], len(m["values"])) for m in sent] == [(int(boundary - 60), 10)]
    assert producer.stats()["buffered"] == 5
    # and flush (exit, SIGTERM) still sends everything
    assert producer.flush(timeout=5)
    assert [(m["timestamp"], len(m["values"])) for m in fake_sqs.metrics("https://example/q")][1:] == [
        (int(boundary), 5)
    ]

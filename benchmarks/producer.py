"""Producer measurements: send_metric latency (plain, datetime timestamps, series handle), sender throughput,
memory under a full outage.

Latency rounds run the variants in shuffled order against the embedded AWS with the sender live, and report the
median over rounds of each round's percentiles (and of each round's ratio to a direct call), since the machine is
noisy. Every measurement checks it measured what it prints before returning a figure.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.producer.producer import MetricProducer

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("send_metric", "aware_datetime", "naive_datetime", "series_handle")
SERIES = 100
QUANTILES = (0.5, 0.99, 0.999)


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {f"p{q * 100:g}": ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000.0 for q in QUANTILES}


def _calls(producer: MetricProducer, variant: str) -> Callable[[int, float], None]:
    """One call of ``variant`` for metric i with value v (series, dimensions and timestamps prepared up front)."""
    dims = [{"Table": f"t{i}", "Service": "cart"} for i in range(SERIES)]
    send = producer.send_metric
    if variant == "series_handle":
        handles = [
            producer.series("Latency", unit="Milliseconds", namespace="Bench/Latency", dimensions=d) for d in dims
        ]
        return lambda i, v: handles[i % SERIES].send(v)
    if variant == "send_metric":
        return lambda i, v: send(
            "Latency", v, unit="Milliseconds", namespace="Bench/Latency", dimensions=dims[i % SERIES]
        )
    now = datetime.now(UTC)
    stamps = [now.replace(microsecond=k * 997) for k in range(1000)]
    if variant == "naive_datetime":
        stamps = [s.replace(tzinfo=None) for s in stamps]
    return lambda i, v: send(
        "Latency",
        v,
        unit="Milliseconds",
        namespace="Bench/Latency",
        dimensions=dims[i % SERIES],
        timestamp=stamps[i % 1000],
    )


def _one_run(pipeline: LocalPipeline, variant: str, calls: int, values: list[float]) -> dict[str, Any]:
    producer = pipeline.producer(handle_sigterm=False)
    call = _calls(producer, variant)
    for i in range(2000):  # start the sender and make its clients before measuring
        call(i, values[i % 1000])
    assert producer.flush(timeout=60), "warm-up did not reach SQS"
    before = producer.stats()
    samples = [0] * calls
    clock = time.perf_counter_ns
    pauses = _GcPauses()
    gc.callbacks.append(pauses)
    started = time.perf_counter()
    try:
        for i in range(calls):
            t = clock()
            call(i, values[i % 1000])
            samples[i] = clock() - t
    finally:
        elapsed = time.perf_counter() - started
        gc.callbacks.remove(pauses)
    during = producer.stats()
    producer.close(timeout=60)
    after = producer.stats()
    # Measured what it says: every call accepted and delivered, none dropped, the sender sent during the run.
    assert after["accepted"] - before["accepted"] == calls, (variant, before, after)
    assert after["sent"] == after["accepted"] and after["dropped"] == 0, (variant, after)
    assert during["sender_rounds"] > before["sender_rounds"], f"{variant}: the sender was idle during the run"
    return {
        **_percentiles(samples),
        "rate_per_second": calls / elapsed,
        "sqs_requests": after["sqs_requests"],
        "gc_collections": len(pauses.durations),
        "gc_max_pause_ms": max(pauses.durations, default=0.0) * 1000,
    }


class _GcPauses:
    """A gc callback noting how long each collection during a run took (any thread's, the sender's included)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)


def _direct_p(pipeline: LocalPipeline, calls: int) -> dict[str, float]:
    samples = []
    for i in range(calls):
        t = time.perf_counter_ns()
        pipeline.cloudwatch.put_metric_data(
            Namespace="Bench/Direct",
            MetricData=[{"MetricName": "Latency", "Value": float(i), "Unit": "Milliseconds"}],
        )
        samples.append(time.perf_counter_ns() - t)
    return _percentiles(samples)


def send_metric_latency(pipeline: LocalPipeline, calls: int = 50_000, rounds: int = 5) -> dict[str, Any]:
    """Caller-thread latency (µs) of each variant, unpaced, sender live; medians over shuffled rounds."""
    rng = random.Random(5)
    values = [round(rng.lognormvariate(2, 0.6), 2) for _ in range(1000)]
    per_round: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {"p50": [], "p99": []}
    order_rng = random.Random(11)
    for _ in range(rounds):
        order = list(VARIANTS)
        order_rng.shuffle(order)
        for variant in order:
            gc.collect()
            per_round[variant].append(_one_run(pipeline, variant, calls, values))
        direct = _direct_p(pipeline, 100)
        plain = per_round["send_metric"][-1]
        for q, per_quantile in ratios.items():
            per_quantile.append(direct[q] / plain[q])
    result: dict[str, Any] = {"calls": calls, "rounds": rounds}
    for variant, runs in per_round.items():
        result[variant] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    result["vs_direct"] = {q: statistics.median(r) for q, r in ratios.items()}
    return result


# -- sender throughput: a service in its own process, as fast as it can, against the embedded AWS ----------------
THROUGHPUT_SERVICE = """
import json, math, random, sys, threading, time
from metricbatch import flush, send_metric, stats

threads, per_thread, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(3)
if kind == "steady":  # service latencies to 0.1 ms, 100 series: values repeat within a series' minute
    values = [round(rng.lognormvariate(math.log(12), 0.6), 1) for _ in range(4096)]
else:  # high cardinality: a value never repeats
    values = None
dims = [{"Table": f"t{i}", "Service": "cart"} for i in range(100)]

def send(offset):
    for i in range(per_thread):
        v = values[i & 4095] if values else offset + i + 0.5
        send_metric("Latency", v, unit="Milliseconds", dimensions=dims[i % 100])

workers = [threading.Thread(target=send, args=(n * per_thread,)) for n in range(threads)]
started = time.perf_counter()
for w in workers:
    w.start()
for w in workers:
    w.join()
elapsed = time.perf_counter() - started
ok = flush(120)
print(json.dumps({"elapsed": elapsed, "flushed": ok, **stats()}))
"""


def sender_throughput(pipeline: LocalPipeline, metrics: int = 1_000_000) -> dict[str, Any]:
    """Metrics/s a service process offers unpaced while its sender keeps up (no drops), SQS on the embedded AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICBATCH_",))}
    env.update(pipeline.env(), METRICBATCH_NAMESPACE="Bench/Throughput", PYTHONPATH=str(REPO))
    results: dict[str, Any] = {}
    for label, threads, kind in (("steady_1_thread", 1, "steady"), ("steady_8_threads", 8, "steady"),
                                 ("high_cardinality_1_thread", 1, "high")):  # fmt: skip
        per_thread = metrics // threads
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(THROUGHPUT_SERVICE), str(threads), str(per_thread), kind],
            env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        stats = json.loads(done.stdout.splitlines()[-1])
        total = threads * per_thread
        # every call counted one way or the other, and what was accepted was delivered or counted as dropped
        assert stats["accepted"] + stats["dropped_buffer_full"] == total, stats
        assert stats["sent"] + stats["fallback_published"] + stats["dropped_undeliverable"] == stats["accepted"], stats
        results[label] = {
            "metrics": total,
            "offered_per_second": total / stats["elapsed"],
            "accepted_per_second": stats["accepted"] / stats["elapsed"],
            "dropped": stats["dropped"],
            "delivered": stats["sent"],
            "flushed": stats["flushed"],
            "sqs_requests": stats["sqs_requests"],
            "wire_bytes_per_metric": stats["wire_bytes"] / max(1, stats["sent"]),
        }
    return results


def producer_memory_under_outage(calls: int = 1_000_000) -> dict[str, Any]:
    """SQS and CloudWatch unreachable (a closed loopback port): 1M send_metric calls, memory bounded, drops counted."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=0.2, read_timeout=0.2, retries={"mode": "standard", "max_attempts": 1})
    dead = {
        "endpoint_url": "http://127.0.0.1:9",
        "region_name": "us-east-1",
        "config": config,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    session = boto3.session.Session()
    sqs, cloudwatch = session.client("sqs", **dead), session.client("cloudwatch", **dead)  # type: ignore[call-overload]
    gc.collect()
    tracemalloc.start()
    producer = MetricProducer(
        "http://127.0.0.1:9/123456789012/q",
        sqs_client=sqs,
        cloudwatch_client=cloudwatch,
        namespace="Bench/Outage",
        handle_sigterm=False,
    )
    dims = [{"Table": f"t{i}", "Service": "cart"} for i in range(100)]
    started = time.perf_counter()
    for i in range(calls):
        producer.send_metric("Latency", float(i), unit="Milliseconds", dimensions=dims[i % 100])  # never repeats
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = producer.stats()
    producer.close(timeout=0)  # don't wait out flush attempts against a dead endpoint
    assert stats["accepted"] + stats["dropped_buffer_full"] == calls, stats
    assert stats["buffered_values"] <= producer.config.max_buffered, stats
    return {
        "calls": calls,
        "seconds": elapsed,
        "peak_mb": peak / 1e6,
        "max_buffered": producer.config.max_buffered,
        "buffered_at_end": stats["buffered"],
        "dropped": stats["dropped"],
        "send_errors": stats["send_errors"],
    }

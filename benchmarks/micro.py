"""Micro-measurements: send_metric latency, handler time against its floor, peak memory (cold import: cold_start)."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

from metricbatch.emulator.stack import LocalPipeline
from metricbatch.producer.producer import MetricProducer

REPO = Path(__file__).resolve().parent.parent


def _percentiles(samples_ns: list[int], quantiles: tuple[float, ...]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {f"p{q * 100:g}": ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000.0 for q in quantiles}


def send_metric_latency(pipeline: LocalPipeline, calls: int = 200_000, rate: float = 50_000.0) -> dict[str, Any]:
    """Caller-thread latency of send_metric (µs) while the background sender ships to SQS, at ``rate``/s."""
    producer = pipeline.producer(handle_sigterm=False)
    dims = [{"Table": f"t{i}", "Service": "cart"} for i in range(100)]
    values = [random.Random(5).lognormvariate(2, 0.6) for _ in range(1000)]
    samples = [0] * calls
    clock, send = time.perf_counter_ns, producer.send_metric
    started = time.perf_counter()
    for i in range(calls):
        t = clock()
        send("Latency", values[i % 1000], unit="Milliseconds", namespace="Bench/Latency", dimensions=dims[i % 100])
        samples[i] = clock() - t
        if i % 100 == 99:
            ahead = started + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.perf_counter() - started
    producer.close(timeout=60)
    stats = producer.stats()
    return {
        "calls": calls,
        "rate_per_second": round(calls / elapsed),
        **_percentiles(samples, (0.5, 0.99, 0.999)),
        "max": max(samples) / 1000.0,
        "sent": stats["sent"],
        "dropped": stats["dropped"],
        "sqs_requests": stats["sqs_requests"],
    }


def direct_call_latency(pipeline: LocalPipeline, calls: int = 300) -> dict[str, Any]:
    """put_metric_data on the same loopback endpoint, µs per call."""
    samples = []
    for i in range(calls):
        t = time.perf_counter_ns()
        pipeline.cloudwatch.put_metric_data(
            Namespace="Bench/Direct",
            MetricData=[
                {
                    "MetricName": "Latency",
                    "Value": float(i),
                    "Unit": "Milliseconds",
                    "Dimensions": [{"Name": "Table", "Value": f"t{i % 100}"}],
                }
            ],
        )
        samples.append(time.perf_counter_ns() - t)
    return {"calls": calls, **_percentiles(samples, (0.5, 0.99))}


def producer_memory_under_outage(calls: int = 1_000_000) -> dict[str, Any]:
    """SQS and CloudWatch unreachable (a closed loopback port): 1M send_metric calls, buffer bounded, drops counted."""
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
        producer.send_metric("Latency", float(i % 997), unit="Milliseconds", dimensions=dims[i % 100])
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = producer.stats()
    producer._closed = True  # don't wait out flush attempts against a dead endpoint
    producer._running = False
    producer._wake.set()
    return {
        "calls": calls,
        "seconds": elapsed,
        "peak_mb": peak / 1e6,
        "max_buffered": producer.config.max_buffered,
        "buffered_at_end": stats["buffered"],
        "dropped": stats["dropped"],
        "send_errors": stats["send_errors"],
    }

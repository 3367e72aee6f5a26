"""Micro-measurements: send_metric latency, handler time against its floor, peak memory (cold import: cold_start)."""

from __future__ import annotations

import gc
import json
import os
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


# -- the handler on one full batch, network stubbed out --------------------------------------------------------------
def _stub_client(service: str) -> Any:
    """A real boto3 client (serialization, signing, gzip) whose HTTP send is short-circuited with an empty 200."""
    import boto3
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    class _Raw:
        def __init__(self, body: bytes) -> None:
            self._body = body

        def stream(self, **_: Any) -> Any:
            yield self._body

        def read(self, *_: Any) -> bytes:
            return self._body

    def respond(request: Any, **_: Any) -> AWSResponse:
        body = b'{"Successful":[],"Failed":[]}' if service == "sqs" else b"{}"
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 200, headers, _Raw(body))

    client = boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.meta.events.register("before-send", respond)
    return client


def full_batch(messages: int = 20, metrics_per_message: int = 1000, series: int = 100) -> list[str]:
    """Message bodies exactly as the producer encodes them (1,000 metrics ≈ 150 KB: one second of a busy service)."""
    producer = MetricProducer("http://unused", namespace="Bench/Handler", handle_sigterm=False)
    producer._running = True  # encode only: no sender thread
    rng = random.Random(11)
    bodies: list[str] = []
    for _ in range(messages):
        for _ in range(metrics_per_message):
            s = rng.randrange(series)
            producer.send_metric(
                f"Op{s % 8}",
                round(rng.lognormvariate(2.5, 0.6), 1),
                unit="Milliseconds",
                dimensions={"Table": f"t{s}", "Service": "cart"},
            )
        items = list(producer._buffer)
        producer._buffer.clear()
        bodies.extend(m.body for m in producer._encode(items))
    return bodies


def _event(bodies: list[str]) -> dict[str, Any]:
    from metricbatch.worker.poller import build_record

    now = str(int(time.time() * 1000))
    messages = [
        {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b, "Attributes": {"SentTimestamp": now}}
        for i, b in enumerate(bodies)
    ]
    return {
        "Records": [
            build_record(m, queue_arn="arn:aws:sqs:us-east-1:123456789012:bench", region="us-east-1") for m in messages
        ]
    }


def handler_vs_floor(repeats: int = 5) -> dict[str, Any]:
    """The real handler (Powertools, validation, aggregation, packing, boto3 serialization + gzip, EMF) on one full
    batch, network stubbed, against the floor: json.loads of the bodies + json.dumps of the resulting requests."""
    import contextlib
    import io

    from metricbatch.batcher.batcher import BatcherConfig
    from metricbatch.batcher.processor import process_sqs_event
    from metricbatch.cloudwatch.aggregation import DatumAggregator
    from metricbatch.cloudwatch.packing import pack_requests
    from metricbatch.wire import parse_envelope, parse_metric
    from metricbatch.worker.poller import LambdaContext

    bodies = full_batch()
    metrics = sum(len(json.loads(b)["metrics"]) for b in bodies)
    event = _event(bodies)
    cloudwatch, sqs = _stub_client("cloudwatch"), _stub_client("sqs")
    config = BatcherConfig(dlq_url="http://127.0.0.1:9/dlq")

    # The requests the handler sends, to serialize in the floor.
    aggregator = DatumAggregator()
    now = time.time()
    for body in bodies:
        for raw in parse_envelope(body)["metrics"]:
            m = parse_metric(raw, now, now)
            aggregator.add(m.namespace, m.name, m.dimensions, m.unit, m.resolution, m.timestamp, m.values, m.counts)
    requests = [r.params() for r in pack_requests(aggregator.datums())]

    def floor() -> None:
        for body in bodies:
            json.loads(body)
        for params in requests:
            json.dumps(params)

    def logic() -> None:
        context = LambdaContext(function_name="bench", memory_mb=256, timeout_seconds=60, region="us-east-1")
        process_sqs_event(event, context, cloudwatch=cloudwatch, sqs=sqs, config=config)

    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MetricBatch")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "metricbatch-bench")
    from metricbatch.batcher import handler as batcher_lambda

    batcher_lambda._clients["cloudwatch@" + os.environ.get("AWS_ENDPOINT_URL", "")] = cloudwatch
    batcher_lambda._clients["sqs@" + os.environ.get("AWS_ENDPOINT_URL", "")] = sqs

    def full_handler() -> None:
        context = LambdaContext(function_name="bench", memory_mb=256, timeout_seconds=60, region="us-east-1")
        with contextlib.redirect_stdout(io.StringIO()):
            batcher_lambda.handler(event, context)

    def best(fn: Any) -> float:
        fn()
        times = []
        for _ in range(repeats):
            gc.collect()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    floor_s, logic_s, handler_s = best(floor), best(logic), best(full_handler)
    tracemalloc.start()
    full_handler()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per = 1e6 / metrics
    return {
        "messages": len(bodies),
        "metrics": metrics,
        "body_bytes": sum(len(b) for b in bodies),
        "put_metric_data_requests": len(requests),
        "floor_us_per_metric": floor_s * per,
        "logic_us_per_metric": logic_s * per,
        "handler_us_per_metric": handler_s * per,
        "handler_over_floor": handler_s / floor_s,
        "handler_peak_memory_mb": peak / 1e6,
    }


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

"""Issue 24: what instrument_boto3 adds per AWS SDK call, and what a roll-up costs.

Instrumentation overhead: two clients of the same endpoint, one from an instrumented session and one not, in
shuffled alternating rounds; per round the mean time per call of each; reported: the median of the per-round
differences (µs per call) and ratios. Two endpoints: the embedded AWS over HTTP (what a service sees, noisy at
the µs scale), and botocore's own pipeline with the socket replaced by a canned response (``before-send``):
serialization, signing, retries handler and parsing are all real, so the difference is the instrumentation's and
the producer's cost alone. The target is checked on the second; both are printed.

The calls are counted in bulk on the producer's sender thread (call_tally.py), once every few seconds: a round it
lands in is an outlier the median leaves out, so its time is measured apart (every ``ApiCallTally.collect`` of the
run, timed) and added, per call, to the median difference. The target applies to that sum.

Roll-up cost: the same calls with ``rollups=[["Service"], []]`` and without: series (custom metrics, $0.30 per
metric-month each), wire datums after merging, and send_metric µs per call.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config

from benchmarks import node
from metricbatch.emulator.embedded import DUMMY_CREDENTIALS
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.limits import PRICE_CUSTOM_METRIC_MONTH
from metricbatch.producer.call_tally import ApiCallTally
from metricbatch.producer.instrument import instrument_boto3
from metricbatch.producer.producer import MetricProducer

OVERHEAD_TARGET_US = 5.0
_CANNED = b'{"QueueUrl": "http://127.0.0.1/123456789012/bench"}'


class _Raw:
    """The body of a canned response, as urllib3 hands it to botocore."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._body


def _canned(request: Any, **_: Any) -> AWSResponse:
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["Content-Length"] = str(len(_CANNED))
    return AWSResponse(request.url, 200, headers, _Raw(_CANNED))


class _AcceptingSqs:
    """Where the instrumented client's metrics go: accepts every SendMessageBatch at once, counting the entries.

    The embedded AWS runs in this process: with it as the producer's queue, its request handling (moto's, slow)
    would run on the measured process between the instrumented rounds only, and be counted as the hooks' cost.
    The producer's own work (buffer, merge, encode, sender thread) is real and measured.
    """

    def __init__(self) -> None:
        self.entries = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += len(Entries)
        return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"]} for e in Entries], "Failed": []}


def _client(session: boto3.session.Session, pipeline: LocalPipeline, *, offline: bool) -> Any:
    client = session.client("sqs", endpoint_url=pipeline.aws.endpoint_url, config=Config(retries={"mode": "standard"}))
    if offline:
        client.meta.events.register("before-send.sqs.GetQueueUrl", _canned)  # type: ignore[arg-type]
    return client


def _session(pipeline: LocalPipeline) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=pipeline.aws.region,
    )


def _round(client: Any, queue: str, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        if not client.get_queue_url(QueueName=queue)["QueueUrl"]:
            raise RuntimeError("no QueueUrl: the call did not do what is measured")
    return (time.perf_counter() - started) / calls * 1e6


def instrumentation_overhead(pipeline: LocalPipeline, *, offline: bool, rounds: int, calls: int) -> dict[str, Any]:
    """µs per call with and without instrument_boto3, side by side (see the module docstring)."""
    namespace = f"Bench/Sdk{'Offline' if offline else 'Http'}"
    queue_sink = _AcceptingSqs()
    producer = MetricProducer(
        pipeline.queue_url, mode="sqs", namespace=namespace, sqs_client=queue_sink, handle_sigterm=False
    )  # the real buffer and sender thread, live
    plain_session, hooked_session = _session(pipeline), _session(pipeline)
    instrumentation = instrument_boto3(hooked_session, producer=producer, namespace=namespace)
    plain = _client(plain_session, pipeline, offline=offline)
    hooked = _client(hooked_session, pipeline, offline=offline)
    queue = pipeline.queue_url.rsplit("/", 1)[1]
    _round(plain, queue, 20), _round(hooked, queue, 20)  # warm both (connections, caches, series handles)
    assert producer.flush(timeout=30)
    before = producer.stats()["accepted"]
    collecting = _CollectTimer()
    rng = random.Random(24)
    per_round: list[tuple[float, float]] = []
    for _ in range(rounds):
        order = [("plain", plain), ("hooked", hooked)]
        rng.shuffle(order)
        times = {label: _round(client, queue, calls) for label, client in order}
        per_round.append((times["plain"], times["hooked"]))
    assert producer.flush(timeout=30)  # counts what the last round noted (timed too)
    collect_seconds = collecting.stop()
    recorded = producer.stats()["accepted"] - before
    instrumentation.undo()
    producer.close()
    # What was measured: 3 metrics per instrumented call (ApiCallDuration, ApiCallSuccessful, RetryCount), none
    # for the plain client's calls.
    if recorded != 3 * rounds * calls or queue_sink.entries == 0:
        raise RuntimeError(f"instrumented calls recorded {recorded} metrics, expected {3 * rounds * calls}")
    differences = [hooked - plain for plain, hooked in per_round]
    counting_us = collect_seconds / (rounds * calls) * 1e6
    return {
        "endpoint": "botocore with a canned response (no socket)" if offline else "embedded AWS over HTTP",
        "rounds": rounds,
        "calls_per_round": calls,
        "plain_us_per_call": statistics.median(p for p, _ in per_round),
        "instrumented_us_per_call": statistics.median(h for _, h in per_round),
        "calling_thread_us_per_call": statistics.median(differences),
        "counting_us_per_call": counting_us,
        "overhead_us_per_call": statistics.median(differences) + counting_us,
        "ratio": statistics.median(h / p for p, h in per_round),
        "metrics_recorded": recorded,
    }


def rollup_cost(pipeline: LocalPipeline, *, calls: int, rounds: int) -> dict[str, Any]:
    """Series, samples, wire datums and send_metric time with roll-ups ``[["Service"], []]`` and without: two
    producers of the pipeline (sender live), the same calls in shuffled alternating rounds."""
    routes = [f"/r{i}" for i in range(20)]
    labels = ("plain", "rollups")
    producers = {
        label: pipeline.producer(namespace=f"Bench/Rollup{label}", default_dimensions={"Service": "cart"})
        for label in labels
    }
    timing: dict[str, list[float]] = {label: [] for label in labels}
    rng = random.Random(42)
    for _ in range(rounds):
        order = list(labels)
        rng.shuffle(order)
        for label in order:
            rollups = [["Service"], []] if label == "rollups" else None
            send = producers[label].send_metric
            started = time.perf_counter()
            for i in range(calls):
                send("Latency", float(i % 7), dimensions={"Route": routes[i % 20]}, rollups=rollups)
            timing[label].append((time.perf_counter() - started) / calls * 1e6)
    results: dict[str, Any] = {}
    for label in labels:
        producer = producers[label]
        assert producer.flush(timeout=60)
        stats = producer.stats()
        producer.close()
        sets = 3 if label == "rollups" else 1
        if stats["accepted"] != rounds * calls * sets or stats["dropped"]:
            raise RuntimeError(f"{label}: accepted {stats['accepted']}, dropped {stats['dropped']}: not what was sent")
        series = len(routes) + sets - 1
        results[label] = {
            "calls": rounds * calls,
            "samples_recorded": stats["accepted"],
            "series": series,
            "wire_datums": stats["wire_entries"],
            "custom_metric_dollars_per_month": round(series * PRICE_CUSTOM_METRIC_MONTH, 2),
            "send_metric_us": statistics.median(timing[label]),
        }
    pipeline.drain()
    results["send_metric_ratio"] = statistics.median(
        r / p for p, r in zip(timing["plain"], timing["rollups"], strict=True)
    )
    return results


class _CollectTimer:
    """Times every ``ApiCallTally.collect`` (whichever thread runs it) until ``stop()``: the counting's share."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = ApiCallTally.collect
        original = self._original

        def timed(tally: ApiCallTally) -> None:
            started = time.perf_counter()
            try:
                original(tally)
            finally:
                self.seconds += time.perf_counter() - started

        ApiCallTally.collect = timed  # type: ignore[method-assign,assignment]

    def stop(self) -> float:
        ApiCallTally.collect = self._original  # type: ignore[method-assign]
        return self.seconds


NODE_SCRIPT = Path(__file__).resolve().parent / "node_sdk.mjs"


def node_overhead(*, rounds: int, calls: int) -> dict[str, Any]:
    """instrumentClient's cost per SDK v3 call, side by side (benchmarks/node_sdk.mjs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env["METRICBATCH_NODE_ENTRY"] = node.NODE_ENTRY.as_uri()
    done = subprocess.run(
        ["node", str(NODE_SCRIPT), str(rounds), str(calls)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"node_sdk.mjs failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    expected = 2 * 3 * rounds * calls  # two instrumented clients (with and without cacheMiddleware)
    if result["metrics_recorded"] != expected or result["metrics_accepted_by_queue"] == 0:
        raise RuntimeError(f"instrumentClient recorded {result['metrics_recorded']}, expected {expected}")
    result["endpoint"] = "SDK v3 with a request handler answering at once (Node)"
    return result


def run(*, quick: bool = False) -> dict[str, Any]:
    with LocalPipeline(queue_name="bench-sdk") as pipeline:
        offline = instrumentation_overhead(pipeline, offline=True, rounds=21 if quick else 201, calls=100)
        http = instrumentation_overhead(pipeline, offline=False, rounds=5 if quick else 15, calls=50 if quick else 200)
        rollups = rollup_cost(pipeline, calls=5_000 if quick else 20_000, rounds=3 if quick else 9)
    node = node_overhead(rounds=21 if quick else 201, calls=100)
    return {
        "instrumentation_node": node,
        "instrumentation_offline": offline,
        "instrumentation_http": http,
        "rollups": rollups,
        "target_node": {
            "target": f"instrumentClient adds <= {OVERHEAD_TARGET_US:g} us per API call (median per-round difference)",
            "value": round(node["overhead_us_per_call"], 2),
            "limit": OVERHEAD_TARGET_US,
            "unit": "us",
            "met": node["overhead_us_per_call"] <= OVERHEAD_TARGET_US,
        },
        "target": {
            "target": f"instrument_boto3 adds <= {OVERHEAD_TARGET_US:g} us per API call (median per-round difference"
            " + the sender thread's counting per call)",
            "value": round(offline["overhead_us_per_call"], 2),
            "limit": OVERHEAD_TARGET_US,
            "unit": "us",
            "met": offline["overhead_us_per_call"] <= OVERHEAD_TARGET_US,
        },
    }


def print_results(results: dict[str, Any]) -> None:
    print("\nAWS SDK instrumentation (instrument_boto3), side by side with an uninstrumented client:")
    for key in ("instrumentation_offline", "instrumentation_http", "instrumentation_node"):
        r = results[key]
        print(
            f"  {r['endpoint']:<46} plain {r['plain_us_per_call']:8.1f} us  instrumented "
            f"{r['instrumented_us_per_call']:8.1f} us  overhead {r['overhead_us_per_call']:+6.2f} us/call "
            f"(ratio {r['ratio']:.3f}, {r['rounds']} rounds x {r['calls_per_round']} calls)"
        )
    for key in ("instrumentation_offline", "instrumentation_http"):
        r = results[key]
        print(
            f"  {r['endpoint']}: on the calling thread {r['calling_thread_us_per_call']:+.2f} us, counted on the "
            f"sender thread {r['counting_us_per_call']:.2f} us per call (included above)"
        )
    n = results["instrumentation_node"]
    print(
        f"  Node: an empty middleware alone adds {n['empty_middleware_us_per_call']:+.2f} us/call (the SDK resolves "
        f"its whole middleware stack on every send); with cacheMiddleware: true (plain "
        f"{n['cached_plain_us_per_call']:.1f} us) instrumentClient adds {n['cached_overhead_us_per_call']:+.2f} us/call"
    )
    r = results["rollups"]
    print('roll-ups [["Service"], []] on 20 routes (default dimension Service), sqs mode, sender live:')
    for label in ("plain", "rollups"):
        x = r[label]
        print(
            f"  {label:<8} series {x['series']:>3} (${x['custom_metric_dollars_per_month']:.2f}/month)  samples "
            f"{x['samples_recorded']:>7,}  wire datums {x['wire_datums']:>5,} (before the batcher merges)  "
            f"send_metric {x['send_metric_us']:.2f} us"
        )
    print(f"  send_metric with roll-ups / without: {r['send_metric_ratio']:.2f}x")
    for t in (results["target"], results["target_node"]):
        print(f"  target: {t['target']}: {t['value']} us -> {'met' if t['met'] else 'MISSED'}")

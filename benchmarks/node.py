"""The Node producer in ``make bench``: sendMetric latency with the sender live, and SQS requests per million metrics
next to the Python producer on the same workload, both against the embedded AWS. Each figure is checked: the metrics
it counts were read back from CloudWatch after the real batcher ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.workloads import Workload, workloads
from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parent.parent
NODE_SCRIPT = Path(__file__).resolve().parent / "node_producer.mjs"
NODE_ENTRY = REPO / "clients" / "node" / "dist" / "esm" / "index.js"
LATENCY_TARGET_US = 5.0


class BenchmarkError(RuntimeError):
    """A benchmark did not measure what it would print (metrics missing, a producer dropped some)."""


def _node(pipeline: LocalPipeline, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env.update({**pipeline.env(), "METRICBATCH_NODE_ENTRY": NODE_ENTRY.as_uri()})
    done = subprocess.run(
        ["node", str(NODE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise BenchmarkError(f"node {' '.join(args)} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


SeriesId = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, name, sorted dimensions


def _read_back(pipeline: LocalPipeline, series: set[SeriesId]) -> tuple[float, float]:
    total = count = 0.0
    for namespace, name, dims in sorted(series):
        s, c = pipeline.read_series(namespace, name, dict(dims))
        total, count = total + s, count + c
    return total, count


def _check(what: str, sent: int, expected_sum: float, read_back: tuple[float, float]) -> None:
    total, count = read_back
    if count != sent or abs(total - expected_sum) > 1e-6 * max(1.0, abs(expected_sum)):
        raise BenchmarkError(f"{what}: sent {sent} metrics summing to {expected_sum}, CloudWatch has {count} / {total}")


def send_metric_latency(calls: int, rate: float = 50_000.0) -> dict[str, Any]:
    """sendMetric on the caller's side (µs, process.hrtime.bigint around each call) at ``rate``/s, sender live."""
    with LocalPipeline(queue_name="bench-node-latency") as pipeline:
        namespace = "Bench/NodeLatency"
        result = _node(pipeline, "latency", str(calls), str(rate), namespace)
        pipeline.drain()
        series: set[SeriesId] = {(namespace, "Latency", (("Service", "cart"), ("Table", f"t{i}"))) for i in range(100)}
        if result["sent"] != calls or not result["flushed"]:
            raise BenchmarkError(f"node latency run: {result}")
        _check("node latency run", calls, result["expected_sum"], _read_back(pipeline, series))
    result["verified"] = True
    return result


def _python_run(pipeline: LocalPipeline, workload: Workload, namespace: str) -> dict[str, Any]:
    producer = pipeline.producer(handle_sigterm=False)
    started = time.perf_counter()
    for i, (ns, name, unit, dims, value) in enumerate(workload.metrics):
        producer.send_metric(name, value, unit=unit, namespace=f"{namespace}/{ns}", dimensions=dims)
        if workload.rate and i % 100 == 99:
            ahead = started + (i + 1) / workload.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    flushed = producer.flush(timeout=60)
    producer.close()
    return {"flushed": flushed, "sent": producer.stats()["sent"]}


def requests_per_million(workload: Workload) -> dict[str, Any]:
    """The same workload, at its rate, through one Node and one Python producer; SendMessageBatch calls counted."""
    results: dict[str, Any] = {}
    with LocalPipeline(queue_name=f"bench-node-{workload.name}") as pipeline, tempfile.TemporaryDirectory() as tmp:
        recorded = Path(tmp) / "workload.json"
        recorded.write_text(json.dumps({"metrics": workload.metrics, "rate": workload.rate}))
        expected_sum = sum(m[4] for m in workload.metrics)
        for producer in ("node", "python"):
            namespace = f"Bench{producer.capitalize()}"
            pipeline.aws.ledger.reset()
            if producer == "node":
                run = _node(pipeline, "workload", str(recorded), namespace)
            else:
                run = _python_run(pipeline, workload, namespace)
            snapshot = pipeline.aws.ledger.snapshot()
            calls = snapshot["calls"].get("sqs:SendMessageBatch", 0)
            body_bytes = snapshot["request_bytes"].get("sqs:SendMessageBatch", 0)
            pipeline.drain()
            series: set[SeriesId] = {
                (f"{namespace}/{m[0]}", m[1], tuple(sorted(m[3].items()))) for m in workload.metrics
            }
            if run["sent"] != len(workload) or not run["flushed"]:
                raise BenchmarkError(f"{producer} producer on {workload.name}: {run}")
            _check(f"{producer} producer on {workload.name}", len(workload), expected_sum, _read_back(pipeline, series))
            results[producer] = {
                "send_message_batch_calls": calls,
                "requests_per_million": calls * 1_000_000 / len(workload),
                "request_bytes_per_metric": body_bytes / len(workload),
                "verified": True,
            }
    return {"workload": workload.name, "metrics": len(workload), "series": workload.series, **results}


def run(quick: bool = False) -> dict[str, Any]:
    """Both measurements; needs the built package (``make node-build``) and Node 20."""
    if not NODE_ENTRY.exists():
        raise BenchmarkError("clients/node is not built: run `make node-build`")
    steady = next(w for w in workloads(0.1 if quick else 1.0) if w.name == "steady")
    return {
        "send_metric_latency_us": send_metric_latency(calls=20_000 if quick else 200_000),
        "sqs_requests": requests_per_million(steady),
    }


def print_results(results: dict[str, Any]) -> None:
    lat, sqs = results["send_metric_latency_us"], results["sqs_requests"]
    met = "met " if lat["p99"] <= LATENCY_TARGET_US else "MISS"
    print(
        f"\nNode producer: sendMetric on the caller's side ({lat['calls']:,} calls at {lat['rate_per_second']:,}/s, "
        f"sender live, all read back): p50 {lat['p50']:.2f} us, p99 {lat['p99']:.2f} us, p99.9 {lat['p99.9']:.2f} us"
        f"  [{met}] target p99 <= {LATENCY_TARGET_US:g} us"
    )
    node, python = sqs["node"], sqs["python"]
    same = "met " if node["requests_per_million"] <= python["requests_per_million"] else "MISS"
    print(
        f"SendMessageBatch per million metrics, workload {sqs['workload']} ({sqs['metrics']:,} metrics, "
        f"{sqs['series']} series, all read back): Node {node['requests_per_million']:,.0f} "
        f"({node['request_bytes_per_metric']:.1f} bytes/metric), Python {python['requests_per_million']:,.0f} "
        f"({python['request_bytes_per_metric']:.1f} bytes/metric)  [{same}] target Node <= Python"
    )


if __name__ == "__main__":
    outcome = run(quick="--quick" in sys.argv)
    print_results(outcome)

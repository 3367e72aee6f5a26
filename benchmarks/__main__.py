"""``make bench``: the six designs side by side (four on the embedded AWS, two EMF), plus the producer and handler
micro-benchmarks.

Writes bench-results/bench.json (and docs/bench/latest.json) and docs/bench/calls-and-dollars.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks import cold_start, designs, fleet, handler, micro, node, sdk
from benchmarks import producer as producer_bench
from benchmarks.report import check_targets, print_tables, write_chart
from benchmarks.workloads import Workload, workloads
from metricbatch.cli.costs import DesignCost, floor_put_metric_data_calls
from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def floor_per_million(workload: Workload, metricbatch_seconds: float) -> dict[str, Any]:
    """The physical floor of the workload: one PutMetricData per 1,000 series-minutes, nothing else. Series: the
    distinct ones the workload holds; minutes: those its pace spans (rate or bursts of ``burst`` a second; unpaced:
    metricbatch's measured run), at least one."""
    series = len({(ns, name, unit, tuple(sorted(dims.items()))) for ns, name, unit, dims, _ in workload.metrics})
    if workload.rate:
        seconds = len(workload) / workload.rate
    elif workload.burst:
        seconds = len(workload) / workload.burst
    else:
        seconds = metricbatch_seconds
    minutes = max(1, math.ceil(seconds / 60))
    calls = floor_put_metric_data_calls(series * minutes)
    cost = DesignCost("floor", put_metric_data_calls=calls).scaled(1_000_000 / len(workload))
    return {"series": series, "minutes": minutes, "series_minutes": series * minutes, **cost.as_dict()}


def run_designs(scale: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for workload in workloads(scale):
        print(f"  workload {workload.name}: {len(workload):,} metrics, {workload.series:,} series", file=sys.stderr)
        with LocalPipeline(queue_name=f"bench-{workload.name}") as pipeline:
            ledger = designs.BilledLedger(pipeline)
            runs = []
            for design in designs.DESIGNS:
                run = design(pipeline, ledger, workload)
                print(f"    {run.design:<16} {run.wall_seconds:6.1f} s", file=sys.stderr)
                runs.append(run)
        direct, old = runs[0].per_million, runs[1].per_million
        ours = next(run for run in runs if run.design == "metricbatch")
        floor = floor_per_million(workload, ours.wall_seconds)
        results[workload.name] = {
            "description": workload.description,
            "metrics": len(workload),
            "series": workload.series,
            "floor_per_million": floor,
            "designs": {
                run.design: {
                    "label": run.label,
                    "metrics_run": run.metrics_run,
                    "requests": run.counts,
                    "invocations": run.invocations,
                    "handler_seconds": run.handler_seconds,
                    "memory_mb": run.memory_mb,
                    "wall_seconds": run.wall_seconds,
                    "per_million": run.per_million.as_dict(),
                    "dollars_vs_direct": direct.dollars / run.per_million.dollars,
                    "dollars_vs_old_batcher": old.dollars / run.per_million.dollars,
                    "dollars_over_floor": run.per_million.dollars / floor["dollars"],
                    "api_calls_saved_per_million": run.api_calls_saved_per_million,
                    "put_metric_data_reduction_vs_direct_pct": 100.0
                    * (1 - run.per_million.put_metric_data_calls / direct.put_metric_data_calls),
                    "notes": run.notes,
                }
                for run in runs
            },
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="workload size factor (1.0 = 20,000 metrics each)")
    parser.add_argument("--quick", action="store_true", help="small runs, for checking the harness")
    parser.add_argument("--out", default=str(REPO / "bench-results"), help="directory for bench.json")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/bench/")
    parser.add_argument("--node-only", action="store_true", help="only the Node producer's measurements")
    parser.add_argument("--sdk-only", action="store_true", help="only instrument_boto3's overhead and roll-up cost")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    started = time.perf_counter()
    scale = 0.1 if args.quick else args.scale
    info = machine()
    print(f"machine: {info['platform']}, {info['cpu_count']} CPUs, Python {info['python']}", file=sys.stderr)

    if args.node_only:
        node.print_results(node.run(quick=args.quick))
        return 0
    if args.sdk_only:
        sdk.print_results(sdk.run(quick=args.quick))
        return 0
    print("designs side by side (embedded AWS over HTTP):", file=sys.stderr)
    results: dict[str, Any] = {"machine": info, "designs": run_designs(scale)}

    print("send_metric latency (shuffled rounds), a direct call, sender throughput:", file=sys.stderr)
    with LocalPipeline(queue_name="bench-latency") as pipeline:
        results["send_metric_latency_us"] = producer_bench.send_metric_latency(
            pipeline, calls=50_000, rounds=2 if args.quick else 5
        )
        results["direct_call_latency_us"] = micro.direct_call_latency(pipeline, calls=50 if args.quick else 300)
        results["sender_throughput"] = producer_bench.sender_throughput(
            pipeline, metrics=200_000 if args.quick else 1_000_000
        )
    print("handler against its floor, cold import from the deployment package, memory:", file=sys.stderr)
    results["handler"] = handler.handler_vs_floor(rounds=3 if args.quick else 9)
    results["cold_import"] = cold_start.cold_import(rounds=3 if args.quick else 9)
    results["producer_outage"] = producer_bench.producer_memory_under_outage(calls=100_000 if args.quick else 1_000_000)
    print("the Node producer: sendMetric latency, SQS requests next to the Python producer:", file=sys.stderr)
    results["node_producer"] = node.run(quick=args.quick)
    print("AWS SDK instrumentation overhead and roll-up cost:", file=sys.stderr)
    results["sdk_and_rollups"] = sdk.run(quick=args.quick)
    print(
        "a fleet, simulated on fake clocks (real buffer, packing, handler): PutMetricData against the floor:",
        file=sys.stderr,
    )
    results["fleet"] = fleet.run(quick=args.quick)
    results["targets"] = check_targets(results) + fleet.targets(results["fleet"])
    results["targets"] += [results["sdk_and_rollups"]["target"], results["sdk_and_rollups"]["target_node"]]
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    results["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    print_tables(results)
    node.print_results(results["node_producer"])
    sdk.print_results(results["sdk_and_rollups"])
    fleet.print_results(results["fleet"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, sort_keys=True, default=str) + "\n"
    (out / "bench.json").write_text(text)
    written = [str(out / "bench.json")]
    if not args.no_docs and not args.quick:
        docs = REPO / "docs" / "bench"
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "latest.json").write_text(text)
        write_chart(results, docs / "calls-and-dollars.png")
        written += [str(docs / "latest.json"), str(docs / "calls-and-dollars.png")]
    print(f"\nwrote {', '.join(written)} in {results['elapsed_seconds']:.0f} s")
    missed = [t for t in results["targets"] if not t["met"]]
    print(f"targets met: {len(results['targets']) - len(missed)}/{len(results['targets'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

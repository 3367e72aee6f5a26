"""Micro-measurements: a direct PutMetricData call (the producer's: producer.py; the handler's: handler.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parent.parent


def _percentiles(samples_ns: list[int], quantiles: tuple[float, ...]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {f"p{q * 100:g}": ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000.0 for q in quantiles}


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

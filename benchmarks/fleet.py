"""A fleet, scaled down with the same structure: PutMetricData against the floor (one datum per series-minute).

Real code, fake clocks: every producer is a real ``MetricBuffer`` (the producer's buffer) emitting its share of its
service's series; its rounds go through ``entries_of``, the shard routing of ``metricbatch.shards`` and
``pack_messages``; each shard's event source mapping is modelled (batch size, window, the 6 MB payload, the burst
split over its concurrent batches); every batch goes to the real handler (``BatcherFunction``, production client
settings) with PutMetricData answered locally after the strict stand-in has checked each request against the real
limits. Minutes pass on a fake clock, so three minutes of a fleet take seconds.

Before printing, it checks what it measured: every sample recorded was published exactly once (sum of counts in the
PutMetricData requests), no request broke a limit, and no batch failed. It prints datums per series-minute and calls
against the floor for today's setting and the scale setting, and checks the plan's model (``costs.fleet_rates``)
against each measurement.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from benchmarks.handler import BenchmarkError, StubbedNetwork, _event, _production_clients
from metricbatch.cli.costs import FleetInputs, fleet_plan, fleet_rates, floor_put_metric_data_per_second
from metricbatch.deploy import (
    FLEET_BATCH_SIZE,
    FLEET_BATCHING_WINDOW_SECONDS,
    FLEET_MAX_CONCURRENCY,
    FLEET_PRODUCER_ROUND_SECONDS,
)
from metricbatch.emulator.strict_cloudwatch import CloudWatchRejection, validate_put_metric_data
from metricbatch.limits import MAX_LAMBDA_PAYLOAD_BYTES, MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.producer.buffer import MetricBuffer
from metricbatch.producer.config import DEFAULT_FLUSH_INTERVAL_SECONDS
from metricbatch.producer.encoding import entries_of, pack_messages
from metricbatch.producer.series import BufferedSeries
from metricbatch.shards import series_identity, shard_of
from metricbatch.validation import check_series

NAMESPACE = "Bench/Fleet"
ALIGNED_DELAY_SECONDS = 0.25  # as the producer's sender: a minute-aligned round starts just after the boundary
CLOCK_SKEW_SECONDS = 0.5  # producers' clocks and send times differ by up to this much
MODEL_TOLERANCE = 0.25
# Lambda's 6 MB payload scaled down so that, as at 1M/s, one shard's minute needs several invocations.
SCALED_PAYLOAD = 96 * 1024


@dataclass(frozen=True)
class Fleet:
    """The workload: services x series each, replicas per service, each replica emitting a share of the series."""

    services: int = 40
    series_per_service: int = 250
    replicas: int = 4
    share: float = 0.5  # of its service's series each replica emits: producers per series = replicas x share
    samples_per_producer_second: int = 25
    minutes: int = 2

    @property
    def producers(self) -> int:
        return self.services * self.replicas

    @property
    def series(self) -> int:
        return self.services * self.series_per_service

    @property
    def rate(self) -> float:
        return float(self.producers * self.samples_per_producer_second)


@dataclass(frozen=True)
class Setting:
    label: str
    round_seconds: float
    shards: int
    batch_size: int
    window_seconds: float
    concurrency: int
    # Lambda's 6 MB, scaled down with the fleet so a shard-minute outgrows one invocation as it does at full scale.
    payload_bytes: int = MAX_LAMBDA_PAYLOAD_BYTES

    @property
    def aligned(self) -> bool:
        return self.round_seconds >= 60 and self.round_seconds % 60 == 0


@dataclass
class _Message:
    at: float
    body: str


@dataclass
class _Counts:
    samples_recorded: int = 0
    samples_published: float = 0.0
    calls: int = 0
    datums: int = 0
    invocations: int = 0
    messages: int = 0
    rejected: list[str] = field(default_factory=list)
    failures: int = 0


@dataclass
class _Producer:
    series: list[BufferedSeries]
    buffer: MetricBuffer
    next: float


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _batches(messages: list[_Message], setting: Setting) -> list[list[_Message]]:
    """The event source mapping of one shard: its concurrent batches take arriving messages in turn; a batch closes
    at the batch size, before 6 MB, or when its window (from its first message) has passed."""
    messages = sorted(messages, key=lambda m: m.at)
    lanes: list[list[_Message]] = [[] for _ in range(max(1, setting.concurrency))]
    for index, message in enumerate(messages):
        lanes[index % len(lanes)].append(message)
    batches: list[list[_Message]] = []
    for lane in lanes:
        current: list[_Message] = []
        size = 0
        for message in lane:
            body = len(message.body.encode())
            if current and (
                len(current) >= setting.batch_size
                or size + body > setting.payload_bytes
                or message.at > current[0].at + setting.window_seconds
            ):
                batches.append(current)
                current, size = [], 0
            current.append(message)
            size += body
        if current:
            batches.append(current)
    return batches


def simulate(fleet: Fleet, setting: Setting, *, seed: int = 27) -> dict[str, Any]:
    """Run the fleet under one setting; what it measured, checked."""
    rng = random.Random(seed)
    start = (time.time() // 60) * 60 - (fleet.minutes + 5) * 60  # recent minutes: timestamps CloudWatch accepts
    clock = _Clock(start)
    series = [
        [
            check_series(NAMESPACE, f"Op{i % 10}", {"Service": f"svc{s}", "Route": f"r{i}"}, "Milliseconds", 60)
            for i in range(fleet.series_per_service)
        ]
        for s in range(fleet.services)
    ]
    shard_cache: dict[Any, int] = {}

    def shard(one: BufferedSeries) -> int:
        if one.key not in shard_cache:
            shard_cache[one.key] = shard_of(series_identity(*one.key), setting.shards)
        return shard_cache[one.key]

    producers: list[_Producer] = []
    for s in range(fleet.services):
        for _ in range(fleet.replicas):
            # Each producer validates its own series (a BufferedSeries belongs to one producer's buffer).
            emitted = [
                BufferedSeries(key) for key in rng.sample(series[s], int(fleet.series_per_service * fleet.share))
            ]
            buffer = MetricBuffer(1_000_000, 10**9, clock)
            skew = rng.uniform(0, CLOCK_SKEW_SECONDS)
            first = (
                start + 60 + ALIGNED_DELAY_SECONDS + skew
                if setting.aligned
                else start + rng.uniform(0, setting.round_seconds)
            )
            producers.append(_Producer(emitted, buffer, first))

    queues: dict[int, list[_Message]] = defaultdict(list)
    counts = _Counts()
    series_minutes: set[tuple[Any, float]] = set()
    distinct: dict[tuple[Any, float], set[float]] = defaultdict(set)
    message_limit = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES

    def run_round(producer: _Producer, now: float, *, everything: bool = False) -> None:
        buffer = producer.buffer
        before = None if everything or not setting.aligned else now - now % 60
        taken = buffer.take(before)
        if taken is None:
            return
        routed: dict[int, list[Any]] = defaultdict(list)
        for entry in entries_of(taken.histograms):
            routed[shard(entry.series)].append(entry)
        for index, entries in routed.items():
            for message in pack_messages(entries, message_limit):
                queues[index].append(_Message(now, message.body))
        buffer.settle(taken, {})

    end = start + fleet.minutes * 60
    second = start
    while second < end + 60 + 5:
        if second < end:
            for producer in producers:
                emitted = producer.series
                for _ in range(fleet.samples_per_producer_second):
                    clock.now = second + rng.random()
                    one = emitted[rng.randrange(len(emitted))]
                    value = float(round(rng.lognormvariate(3.0, 0.5)))  # latency in whole milliseconds
                    producer.buffer.record(one, value, None)
                    minute = clock.now - clock.now % 60
                    series_minutes.add((one.key, minute))
                    distinct[(one.key, minute)].add(value)
                    counts.samples_recorded += 1
        second += 1.0
        for producer in producers:
            while producer.next <= second:
                clock.now = producer.next
                run_round(producer, producer.next)
                producer.next += setting.round_seconds
    for producer in producers:  # exit: whatever is left (nothing, when the rounds kept up)
        clock.now = end + 120
        run_round(producer, clock.now, everything=True)

    network = StubbedNetwork()
    from metricbatch.batcher.handler import BatcherFunction
    from metricbatch.worker.poller import LambdaContext

    function = BatcherFunction(client_factory=_production_clients(network))
    for messages in queues.values():
        counts.messages += len(messages)
        for batch in _batches(messages, setting):
            network.bodies.clear()
            # A fresh context per invocation (its deadline counts from now), as Lambda gives each invocation.
            context = LambdaContext(function_name="bench-fleet", memory_mb=256, timeout_seconds=60, region="us-east-1")
            with contextlib.redirect_stdout(io.StringIO()):
                response = function(_event([m.body for m in batch]), context)
            counts.invocations += 1
            if response != {"batchItemFailures": []}:
                counts.failures += 1
            for raw in network.bodies:
                body = json.loads(raw)
                try:
                    validate_put_metric_data(body, len(raw))
                except CloudWatchRejection as exc:
                    counts.rejected.append(str(exc))
                counts.calls += 1
                for datum in body["MetricData"]:
                    counts.datums += 1
                    if "Values" in datum:
                        counts.samples_published += sum(datum.get("Counts", [1.0] * len(datum["Values"])))
                    else:
                        counts.samples_published += 1.0
    if counts.failures or counts.rejected:
        raise BenchmarkError(f"{setting.label}: {counts.failures} failed batches, rejected: {counts.rejected[:2]}")
    if counts.samples_published != counts.samples_recorded:
        raise BenchmarkError(
            f"{setting.label}: published {counts.samples_published:,.0f} of {counts.samples_recorded:,} samples"
        )
    floor_calls = len(series_minutes) / 1000
    distinct_values = sum(len(v) for v in distinct.values()) / len(distinct)
    model = fleet_rates(
        FleetInputs(
            rate=fleet.rate,
            series=fleet.series,
            producers=fleet.producers,
            producers_per_series=round(fleet.replicas * fleet.share),
            distinct_values=math.ceil(distinct_values),
            round_seconds=setting.round_seconds,
            shards=setting.shards,
            batch_size=setting.batch_size,
            window_seconds=setting.window_seconds,
            concurrent_batches=setting.concurrency,
            payload_bytes=setting.payload_bytes,
        )
    )
    model_calls = model.put_metric_data_per_second * fleet.minutes * 60
    return {
        "setting": setting.label,
        "round_seconds": setting.round_seconds,
        "shards": setting.shards,
        "batch_size": setting.batch_size,
        "window_seconds": setting.window_seconds,
        "samples": counts.samples_recorded,
        "series_minutes": len(series_minutes),
        "distinct_values_per_series_minute": distinct_values,
        "messages": counts.messages,
        "invocations": counts.invocations,
        "put_metric_data_calls": counts.calls,
        "datums": counts.datums,
        "datums_per_series_minute": counts.datums / len(series_minutes),
        "floor_calls": floor_calls,
        "calls_over_floor": counts.calls / floor_calls,
        "model_calls": model_calls,
        "model_datums_per_series_minute": model.datums_per_series_minute,
        "model_over_measured": model_calls / counts.calls,
    }


def settings_for_bench(fleet: Fleet) -> list[Setting]:
    """Today's setting, the plan's recommendation for this fleet, and the scale setting with Lambda's payload scaled
    down (1 shard, then the shards that let one invocation per concurrent batch see a shard's minute again)."""
    recommended = fleet_plan(
        rate=fleet.rate,
        series=fleet.series,
        producers=fleet.producers,
        producers_per_series=round(fleet.replicas * fleet.share),
    ).recommended.inputs

    def scale(label: str, shards: int, payload: int = MAX_LAMBDA_PAYLOAD_BYTES) -> Setting:
        return Setting(
            label,
            float(FLEET_PRODUCER_ROUND_SECONDS),
            shards,
            FLEET_BATCH_SIZE,
            float(FLEET_BATCHING_WINDOW_SECONDS),
            FLEET_MAX_CONCURRENCY,
            payload,
        )

    return [
        Setting("today: 5 s round, 1 queue, batch 20, window 30 s", DEFAULT_FLUSH_INTERVAL_SECONDS, 1, 20, 30.0, 2),
        scale(f"scale (plan): 60 s round, {recommended.shards} shards", recommended.shards),
        scale(f"60 s round, 1 shard, payload {SCALED_PAYLOAD // 1024} KiB", 1, SCALED_PAYLOAD),
        scale(f"60 s round, 8 shards, payload {SCALED_PAYLOAD // 1024} KiB", 8, SCALED_PAYLOAD),
    ]


def run(quick: bool = False) -> dict[str, Any]:
    fleet = Fleet(services=10) if quick else Fleet()
    print(
        f"  fleet: {fleet.producers} producers, {fleet.series:,} series, {fleet.rate:,.0f} samples/s, "
        f"{fleet.minutes} fake minutes",
        file=sys.stderr,
    )
    runs = []
    for setting in settings_for_bench(fleet):
        started = time.perf_counter()
        result = simulate(fleet, setting)
        result["wall_seconds"] = time.perf_counter() - started
        print(f"    {setting.label:<50} {result['wall_seconds']:6.1f} s", file=sys.stderr)
        runs.append(result)
    full = fleet_plan(rate=1_000_000, series=200_000, producers=2_000)
    return {
        "fleet": {
            "producers": fleet.producers,
            "series": fleet.series,
            "producers_per_series": fleet.replicas * fleet.share,
            "rate": fleet.rate,
            "minutes": fleet.minutes,
        },
        "runs": runs,
        "plan_at_1m_per_second": full.as_dict(),
        "floor_put_metric_data_per_second_1m": floor_put_metric_data_per_second(200_000),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = results["runs"]
    scale = runs[1]
    plan = results["plan_at_1m_per_second"]
    checks = [
        ("fleet sim: scale setting PutMetricData <= 2x the floor", scale["calls_over_floor"], "<=", 2.0, "x"),
        (
            "fleet sim: the plan's model within 25% of every measured setting",
            max(abs(r["model_over_measured"] - 1) for r in runs) * 100,
            "<=",
            MODEL_TOLERANCE * 100,
            "%",
        ),
        (
            "plan at 1M/s, 200k series, 2k producers: recommended <= 2x floor",
            plan["recommended"]["put_metric_data_per_second"] / plan["floor_put_metric_data_per_second"],
            "<=",
            2.0,
            "x",
        ),
    ]
    return [
        {"target": name, "value": value, "limit": limit, "unit": unit, "met": value <= limit}
        for name, value, _, limit, unit in checks
    ]


def print_results(results: dict[str, Any]) -> None:
    fleet = results["fleet"]
    print(
        f"\nFleet (simulated, real buffer/packing/handler): {fleet['producers']} producers, "
        f"{fleet['series']:,} series, "
        f"{fleet['producers_per_series']:g} producers per series, {fleet['rate']:,.0f}/s, {fleet['minutes']} min"
    )
    print(f"{'setting':<52}{'datums/series-min':>18}{'calls':>8}{'x floor':>9}{'model':>8}{'model/meas':>11}")
    for run in results["runs"]:
        print(
            f"{run['setting']:<52}{run['datums_per_series_minute']:>18.2f}{run['put_metric_data_calls']:>8}"
            f"{run['calls_over_floor']:>9.2f}{run['model_calls']:>8.0f}{run['model_over_measured']:>11.2f}"
        )
    plan = results["plan_at_1m_per_second"]
    rec, today = plan["recommended"], plan["today"]
    print(
        f"plan at 1,000,000/s, 200,000 series, 2,000 producers: floor {plan['floor_put_metric_data_per_second']:.2f} "
        f"calls/s; today {today['put_metric_data_per_second']:.1f}/s (${today['dollars_per_month']:,.0f}/month); "
        f"{rec['context']}: {rec['put_metric_data_per_second']:.2f}/s (${rec['dollars_per_month']:,.0f}/month)"
    )


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv)
    print_results(out)
    for target in targets(out):
        print(target)

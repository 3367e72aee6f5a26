"""``make soak`` / ``python -m benchmarks.soak``: a bounded local soak of the whole pipeline.

Producer threads send at a steady rate through LocalPipeline (embedded AWS, strict CloudWatch) while the poller
runs in the background with a short batching window. Reported: throughput, end-to-end latency percentiles (probe
metrics: from send_metric() to the PutMetricData call that carried them returning), RSS every 10 s, and loss
(expected sums and sample counts read back from CloudWatch; must be 0). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.producer.producer import MetricProducer

NAMESPACE = "Soak/Load"
PROBE_NAME = "SoakProbe"
PROBE_DIMENSION = "Probe"
SERIES_PER_PRODUCER = 4
TICK_SECONDS = 0.01  # producers send in small steady slices, not bursts
PRELOAD_METRICS = 1000  # --processes: what the pre-fork parent buffers before forking its workers


def rss_mib() -> float:
    """Resident set size of this process, from /proc/self/status (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


@dataclass
class ProbeClock:
    """Send times of probe metrics and the times the PutMetricData call carrying them succeeded."""

    sent: dict[str, float] = field(default_factory=dict)
    published: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def latencies(self) -> list[float]:
        with self.lock:
            return sorted(self.published[k] - self.sent[k] for k in self.published if k in self.sent)


class ProbeWatchingCloudWatch:
    """The handler's CloudWatch client, noting when each probe datum has been published."""

    def __init__(self, client: Any, probes: ProbeClock) -> None:
        self._client = client
        self._probes = probes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_metric_data(self, **params: Any) -> Any:
        response = self._client.put_metric_data(**params)
        done = time.monotonic()
        with self._probes.lock:
            for datum in params.get("MetricData", []):
                if datum.get("MetricName") == PROBE_NAME:
                    for dim in datum.get("Dimensions", []):
                        if dim["Name"] == PROBE_DIMENSION:
                            self._probes.published.setdefault(dim["Value"], done)
        return response


@dataclass
class Expected:
    sums: dict[tuple[str, str], float] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: tuple[str, str], total: float, count: int) -> None:
        with self.lock:
            self.sums[key] = self.sums.get(key, 0.0) + total
            self.counts[key] = self.counts.get(key, 0) + count


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[index]


def _producer_loop(
    index: int,
    producer: MetricProducer,
    rate: float,
    until: float,
    probe_every: float,
    expected: Expected,
    probes: ProbeClock | None,
    sent: list[int],
    label: str | None = None,
) -> Any:
    series = [(label or f"p{index}", f"kind-{k}") for k in range(SERIES_PER_PRODUCER)]
    per_series_totals: dict[tuple[str, str], list[float]] = {s: [0.0, 0.0] for s in series}
    start = time.monotonic()
    next_probe = start
    count = 0
    probe_seq = 0
    while True:
        now = time.monotonic()
        if now >= until:
            break
        due = int((now - start) * rate)
        while count < due:
            producer_name, kind = series[count % len(series)]
            value = float(count % 10)
            producer.send_metric("Work", value, unit="Count", dimensions={"Producer": producer_name, "Kind": kind})
            totals = per_series_totals[(producer_name, kind)]
            totals[0] += value
            totals[1] += 1
            count += 1
        if probes is not None and now >= next_probe:
            probe = f"{index}-{probe_seq}"
            with probes.lock:
                probes.sent[probe] = time.monotonic()
            producer.send_metric(PROBE_NAME, 1.0, unit="Count", dimensions={PROBE_DIMENSION: probe})
            probe_seq += 1
            next_probe += probe_every
        sent[index] = count
        time.sleep(TICK_SECONDS)
    for key, (total, n) in per_series_totals.items():
        expected.add(key, total, int(n))
    return producer


def _fork_workers(
    count: int, producer: MetricProducer, rate: float, until: float, expected: Expected
) -> list[tuple[int, int]]:
    """Pre-fork workers (gunicorn --preload style): each inherits ``producer`` and sends with it for itself, then
    reports its totals through a pipe. Returns (pid, read end) per worker."""
    workers = []
    for k in range(count):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: never unwind the parent's stack (its pipeline) here, leave with os._exit
            code = 1
            try:
                os.close(read_end)
                own = Expected()
                _producer_loop(0, producer, rate, until, 0.0, own, None, [0], label=f"worker{k}")
                producer.close(timeout=60)  # what the exit hooks would do
                report = {"sums": list(own.sums.items()), "counts": list(own.counts.items()), "stats": producer.stats()}
                with os.fdopen(write_end, "w") as pipe:
                    json.dump(report, pipe)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_end)
        workers.append((pid, read_end))
    return workers


def _join_workers(workers: list[tuple[int, int]], expected: Expected) -> list[dict[str, int]]:
    stats = []
    for pid, read_end in workers:
        with os.fdopen(read_end) as pipe:
            report = json.load(pipe)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"soak worker {pid} failed")
        counts = {tuple(k): v for k, v in report["counts"]}
        for key, total in report["sums"]:
            expected.add(tuple(key), total, counts[tuple(key)])
        stats.append(report["stats"])
    return stats


def run_soak(
    *,
    seconds: float,
    rate: float,
    producers: int,
    window: float,
    probes_per_second: float,
    stream: Any,
    processes: int = 0,
) -> dict[str, Any]:
    probes = ProbeClock()
    expected = Expected()
    rss_samples: list[tuple[float, float]] = []
    sent = [0] * producers
    started = time.monotonic()
    with LocalPipeline(window_seconds=window, concurrency=2) as pipeline:
        from metricbatch.batcher import handler as batcher_lambda

        def client(service: str) -> Any:
            created = batcher_lambda.create_client(service)
            return ProbeWatchingCloudWatch(created, probes) if service == "cloudwatch" else created

        # A sandbox whose CloudWatch client watches the probes go out.
        batcher_lambda.new_sandbox(batcher_lambda.BatcherFunction(client_factory=client))
        pipeline.start_polling()
        send_start = time.monotonic()
        until = send_start + seconds
        results: list[Any] = [None] * producers

        def worker(i: int) -> None:
            producer = pipeline.producer(namespace=NAMESPACE, handle_sigterm=False)
            share = rate / (producers + processes)
            results[i] = _producer_loop(
                i, producer, share, until, producers / probes_per_second, expected, probes, sent
            )

        forked: list[tuple[int, int]] = []
        if processes:
            # A pre-fork parent: one producer making its clients per process, with metrics buffered before fork
            # (the parent's to send, never a worker's).
            shared = MetricProducer(
                pipeline.queue_url, namespace=NAMESPACE, client_factory=pipeline.aws.client, handle_sigterm=False
            )
            for _ in range(PRELOAD_METRICS):
                shared.send_metric("Work", 1.0, unit="Count", dimensions={"Producer": "preload", "Kind": "kind-0"})
            expected.add(("preload", "kind-0"), float(PRELOAD_METRICS), PRELOAD_METRICS)
            forked = _fork_workers(processes, shared, rate / (producers + processes), until, expected)
            results.append(shared)

        threads = [threading.Thread(target=worker, args=(i,), name=f"soak-producer-{i}") for i in range(producers)]
        for thread in threads:
            thread.start()
        next_sample = send_start
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            if now >= next_sample:
                elapsed = now - send_start
                rss = rss_mib()
                rss_samples.append((round(elapsed, 1), round(rss, 1)))
                stream.write(
                    f"t={elapsed:6.1f}s  sent {sum(sent):>9,}  queue {pipeline.queue_depth():>5}  "
                    f"invocations {pipeline.poller.stats.invocations:>6}  RSS {rss:7.1f} MiB\n"
                )
                stream.flush()
                next_sample += 10.0
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        worker_stats = _join_workers(forked, expected)
        send_elapsed = time.monotonic() - send_start
        for producer in results:
            producer.close(timeout=60)
        pipeline.drain(timeout=120)
        drained = time.monotonic() - send_start
        rss_samples.append((round(drained, 1), round(rss_mib(), 1)))

        delivered = 0
        exact = 0
        for (producer_name, kind), count in expected.counts.items():
            total, samples = pipeline.read_series(NAMESPACE, "Work", {"Producer": producer_name, "Kind": kind})
            delivered += int(samples)
            exact += int(samples == count and total == expected.sums[(producer_name, kind)])
        ledger = pipeline.aws.ledger.snapshot()
        poller = pipeline.poller.stats
        stats = [p.stats() for p in results] + worker_stats
        dlq = pipeline.dlq_depth()
    sent_total = sum(expected.counts.values())
    latencies = probes.latencies()
    calls = ledger["calls"]
    return {
        "seconds": seconds,
        "target_rate": rate,
        "producers": producers,
        "processes": processes,
        "window_seconds": window,
        "metrics_sent": sent_total,
        "metrics_delivered": delivered,
        "metrics_lost": sent_total - delivered,
        "series_exact": exact,
        "series": len(expected.counts),
        "send_rate_per_s": round(sent_total / send_elapsed, 1),
        "delivered_rate_per_s": round(delivered / drained, 1),
        "latency_probes": len(latencies),
        "latency_probes_missing": len(probes.sent) - len(latencies),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p90_s": round(percentile(latencies, 90), 3),
        "latency_p99_s": round(percentile(latencies, 99), 3),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "rss_mib": rss_samples,
        "rss_growth_mib": round(rss_samples[-1][1] - rss_samples[0][1], 1) if rss_samples else 0.0,
        "put_metric_data_calls": calls.get("cloudwatch:PutMetricData", 0),
        "invalid_requests": ledger["errors"].get("cloudwatch:PutMetricData", 0),
        "sqs_send_requests": calls.get("sqs:SendMessageBatch", 0) + calls.get("sqs:SendMessage", 0),
        "lambda_invocations": poller.invocations,
        "lambda_item_failures": poller.item_failures,
        "dlq_messages": dlq,
        "producer_dropped": sum(s["dropped"] for s in stats),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def print_report(report: dict[str, Any], stream: Any) -> None:
    lines = [
        "",
        f"metricbatch soak — {report['seconds']:.0f} s at {report['target_rate']:,.0f} metrics/s "
        f"from {report['producers']} producers + {report['processes']} forked processes, "
        f"batching window {report['window_seconds']:g} s",
        "-" * 72,
        f"metrics sent / delivered / lost      {report['metrics_sent']:>10,} / {report['metrics_delivered']:,} / "
        f"{report['metrics_lost']:,}",
        f"series read back exactly             {report['series_exact']:>10} of {report['series']}",
        f"throughput sent / delivered          {report['send_rate_per_s']:>10,.0f} / "
        f"{report['delivered_rate_per_s']:,.0f} metrics/s",
        f"end-to-end latency p50 / p90 / p99   {report['latency_p50_s']:>10.3f} / {report['latency_p90_s']:.3f} / "
        f"{report['latency_p99_s']:.3f} s (max {report['latency_max_s']} s, {report['latency_probes']} probes)",
        f"PutMetricData calls (invalid)        {report['put_metric_data_calls']:>10,} ({report['invalid_requests']})",
        f"SQS send requests                    {report['sqs_send_requests']:>10,}",
        f"batcher invocations (item failures)  {report['lambda_invocations']:>10,} ({report['lambda_item_failures']})",
        f"DLQ messages / producer drops        {report['dlq_messages']:>10} / {report['producer_dropped']}",
        "RSS (s, MiB)                         " + "  ".join(f"{t:g}:{m:.0f}" for t, m in report["rss_mib"]),
        f"RSS growth                           {report['rss_growth_mib']:>10.1f} MiB",
    ]
    stream.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the producers send (default 180)")
    parser.add_argument("--rate", type=float, default=2000.0, help="metrics per second in total (default 2000)")
    parser.add_argument("--producers", type=int, default=2, help="producer threads (default 2)")
    parser.add_argument("--window", type=float, default=1.0, help="batching window, seconds (default 1)")
    parser.add_argument("--probes", type=float, default=10.0, help="latency probes per second (default 10)")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="also fork N worker processes from a pre-fork parent that buffered metrics first (default 0)",
    )
    parser.add_argument("--json", action="store_true", help="end with the report as one JSON line")
    args = parser.parse_args(argv)
    report = run_soak(
        seconds=args.seconds,
        rate=args.rate,
        producers=args.producers,
        window=args.window,
        probes_per_second=args.probes,
        stream=sys.stderr,
        processes=args.processes,
    )
    print_report(report, sys.stdout)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    ok = report["metrics_lost"] == 0 and report["series_exact"] == report["series"] and report["invalid_requests"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

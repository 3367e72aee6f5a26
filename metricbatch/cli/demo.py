"""``metricbatch demo``: the whole pipeline on the embedded AWS, ending in a savings report."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metricbatch.batcher.self_metrics import api_calls_saved
from metricbatch.cli import arguments
from metricbatch.cli.costs import DesignCost, direct_cost, gb_seconds, old_batcher_cost, per_million
from metricbatch.emulator.local_pipeline import LocalPipeline, find_assembly
from metricbatch.exceptions import ConfigurationError

DEMO_DASHBOARD = "metricbatch-dashboard.png"
DEMO_DASHBOARD_WINDOW_SECONDS = 3 * 3600  # the dashboard's 7 days would squeeze a one-minute demo into one pixel

# Realistic service-wrapper metrics: (namespace, metric, unit, dimension name, dimension values, value range)
WORKLOAD: tuple[tuple[str, str, str, str, tuple[str, ...], tuple[float, float]], ...] = (
    ("Shop/Checkout", "DynamoDB.GetItem", "Milliseconds", "Table", ("orders", "carts", "users"), (2, 40)),
    ("Shop/Checkout", "DynamoDB.PutItem", "Milliseconds", "Table", ("orders", "carts"), (4, 60)),
    ("Shop/Checkout", "KMS.Decrypt", "Milliseconds", "KeyAlias", ("alias/payments", "alias/pii"), (3, 25)),
    ("Shop/Checkout", "OrdersPlaced", "Count", "Channel", ("web", "ios", "android"), (1, 1)),
    ("Shop/Catalog", "S3.GetObject", "Milliseconds", "Bucket", ("images", "feeds"), (8, 120)),
    ("Shop/Catalog", "S3.PutObject.Size", "Bytes", "Bucket", ("images", "feeds"), (1024, 4_000_000)),
    ("Shop/Catalog", "SecretsManager.GetSecretValue", "Milliseconds", "Secret", ("db", "api-key"), (10, 90)),
    ("Shop/Catalog", "CacheHits", "Count", "Cache", ("product", "price"), (0, 1)),
)


@dataclass
class Expected:
    """What the simulated services sent, per series, to compare with what CloudWatch reports."""

    sums: dict[tuple[str, str, str, str, str], float] = field(default_factory=dict)
    counts: dict[tuple[str, str, str, str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: tuple[str, str, str, str, str], value: float) -> None:
        with self.lock:
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the whole pipeline locally and print a savings report")
    parser.add_argument(
        "--metrics", type=arguments.positive_int, default=20_000, help="metrics to send in total (default 20000)"
    )
    parser.add_argument(
        "--services", type=arguments.positive_int, default=4, help="simulated services, one producer each (default 4)"
    )
    parser.add_argument("--json", action="store_true", help="end with the report as one JSON line")
    parser.add_argument(
        "--seed", type=int, default=42, help="seed of the simulated workload; the same seed sends the same metrics"
    )
    parser.add_argument(
        "--dashboard",
        type=Path,
        default=Path(DEMO_DASHBOARD),
        help=f"where to write the dashboard (default {DEMO_DASHBOARD})",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="do not render the dashboard")
    arguments.add_batcher_options(parser)
    parser.set_defaults(func=run)


def _service(
    index: int, count: int, pipeline: LocalPipeline, expected: Expected, progress: list[int], seed: int
) -> Any:
    rng = random.Random(seed + index)
    producer = pipeline.producer(handle_sigterm=False)
    service = f"service-{index + 1}"
    for i in range(count):
        namespace, name, unit, dim_name, dim_values, (low, high) = WORKLOAD[i % len(WORKLOAD)]
        dim_value = dim_values[rng.randrange(len(dim_values))]
        if unit in ("Count", "Bytes"):
            value = float(rng.randint(int(low), int(high)))
        else:
            value = round(rng.lognormvariate(math.log((low + high) / 4), 0.6), 1)
        producer.send_metric(
            name, value, unit=unit, namespace=namespace, dimensions={dim_name: dim_value, "Service": service}
        )
        expected.add((namespace, name, unit, f"{dim_name}={dim_value}", service), value)
        if i % 500 == 0:
            progress[index] = i
            time.sleep(0.001)  # services emit over time, not in one burst
    progress[index] = count
    return producer


def _progress_bar(label: str, done: int, total: int, stream: Any) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    stream.write(f"\r{label:<22} [{'#' * filled}{'.' * (width - filled)}] {done:>9,}/{total:,}")
    stream.flush()


def run(args: argparse.Namespace) -> int:
    dashboard = None if args.no_dashboard else args.dashboard
    assembly = find_assembly(args.assembly, in_process=args.in_process)
    report = run_demo(metrics=args.metrics, services=args.services, seed=args.seed, show_progress=True,
                      dashboard=dashboard, assembly=assembly)  # fmt: skip
    print_report(report)
    if report.get("dashboard"):
        print(f"dashboard: {report['dashboard']}")
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0 if report["metrics_lost"] == 0 else 1


def run_demo(
    *,
    metrics: int,
    services: int,
    seed: int = 42,
    show_progress: bool = False,
    dashboard: Path | None = None,
    assembly: Path | None = None,
) -> dict[str, Any]:
    """Run the pipeline end to end and return the report (the fields of ``demo --json``).

    With ``assembly`` the batcher is the deployed package run as Lambda runs it; without, the in-process handler.
    """
    stream = sys.stderr
    started = time.perf_counter()
    expected = Expected()
    with LocalPipeline(assembly=assembly) as pipeline:
        pipeline.warm_batcher()  # a package that cannot start fails here, naming its handler
        batcher = pipeline.describe_batcher()
        if show_progress:
            stream.write(f"batcher: {batcher}\n")
        pipeline.start_polling()
        per_service = [metrics // services + (1 if i < metrics % services else 0) for i in range(services)]
        progress = [0] * services
        producers: list[Any] = [None] * services

        def worker(i: int) -> None:
            producers[i] = _service(i, per_service[i], pipeline, expected, progress, seed)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(services)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            if show_progress:
                _progress_bar("services sending", sum(progress), metrics, stream)
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        if show_progress:
            _progress_bar("services sending", metrics, metrics, stream)
            stream.write("\n")
        for index, producer in enumerate(producers):
            if not producer.flush(timeout=120):
                stream.write(f"\nwarning: service-{index + 1} has not finished sending: {producer.stats()}\n")
            producer.close(timeout=5)
        # The producers are done: stop the background pollers (letting a batch they hold finish) and drain now
        # instead of sitting out the 30 s window. Nothing polls after this, so nothing is picked up unseen.
        pipeline.finish_polling()
        if show_progress:
            _progress_bar("delivered to CloudWatch", metrics, metrics, stream)
            stream.write("\n")

        delivered = 0
        exact_series = 0
        for key, count in expected.counts.items():
            namespace, name, unit, dim, service = key
            dim_name, dim_value = dim.split("=", 1)
            total, samples = pipeline.read_series(namespace, name, {dim_name: dim_value, "Service": service}, unit=unit)
            delivered += int(min(samples, count))
            if samples == count and math.isclose(total, expected.sums[key], rel_tol=1e-9, abs_tol=1e-6):
                exact_series += 1
        ledger = pipeline.aws.ledger.snapshot()
        if delivered < metrics:
            stream.write(f"\ndiagnostics: {pipeline.diagnostics()}\n")
        poller = pipeline.poller.stats
        stats = [p.stats() for p in producers]
        dlq_messages = pipeline.dlq_depth()
        queue_remaining = pipeline.queue_depth()
        sandboxes = pipeline.function.stats if pipeline.function is not None else None
        elapsed = round(time.perf_counter() - started, 2)  # the pipeline's run, not the picture's rendering
        dashboard_path, dashboard_values = _render_dashboard(pipeline, dashboard, stream) if dashboard else (None, {})
    calls = ledger["calls"]
    put_calls = calls.get("cloudwatch:PutMetricData", 0)
    sqs_sends = calls.get("sqs:SendMessageBatch", 0) + calls.get("sqs:SendMessage", 0)
    sqs_billed = ledger["sqs_billed_requests"]
    sqs_design_requests = sum(
        v
        for k, v in calls.items()
        if k in ("sqs:SendMessageBatch", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessageBatch")
    )
    ours = DesignCost(
        "metricbatch",
        put_metric_data_calls=put_calls,
        sqs_requests=sqs_billed,
        lambda_invocations=poller.invocations,
        lambda_gb_seconds=gb_seconds(poller.handler_seconds, pipeline.settings.function_memory_mb),
    )
    designs = [direct_cost(metrics), old_batcher_cost(metrics), ours]
    return {
        "metrics_sent": metrics,
        "metrics_delivered": delivered,
        "metrics_lost": metrics - delivered,
        "series": len(expected.counts),
        "series_exact": exact_series,
        "put_metric_data_calls": put_calls,
        # the batcher's definition (ApiCallsSaved): what was published, read back, less the calls that published it
        "api_calls_saved": api_calls_saved(delivered, put_calls),
        "sqs_send_requests": sqs_sends,
        "sqs_requests": sqs_design_requests,
        "sqs_billed_requests": sqs_billed,
        "lambda_invocations": poller.invocations,
        "lambda_item_failures": poller.item_failures,
        "dlq_messages": dlq_messages,
        "queue_messages_remaining": queue_remaining,
        "producer_dropped": sum(s["dropped"] for s in stats),
        "invalid_requests": ledger["errors"].get("cloudwatch:PutMetricData", 0),
        "direct_put_metric_data_calls": metrics,
        "old_batcher_put_metric_data_calls": designs[1].put_metric_data_calls,
        "reduction_vs_direct_pct": 100.0 * (1 - put_calls / metrics) if metrics else 0.0,
        "reduction_vs_old_batcher_pct": 100.0 * (1 - put_calls / designs[1].put_metric_data_calls) if metrics else 0.0,
        "dollars_per_million_metrics": {d.design: per_million(d, metrics).dollars for d in designs},
        "handler_seconds": round(poller.handler_seconds, 3),
        "batcher": "deployed-package" if sandboxes is not None else "in-process",
        "batcher_detail": batcher,
        "lambda_cold_starts": sandboxes.cold_starts if sandboxes is not None else None,
        "lambda_timeouts": sandboxes.timeouts if sandboxes is not None else None,
        "elapsed_seconds": elapsed,
        "dashboard": dashboard_path,
        # what the picture's single-value widgets show ({title: {label: value}}), to compare with this report
        "dashboard_values": dashboard_values,
    }


def _render_dashboard(
    pipeline: LocalPipeline, out: Path, stream: Any
) -> tuple[str | None, dict[str, dict[str, float | None]]]:
    """The synthesized dashboard of the pipeline's environment, from its CloudWatch, over the last hours."""
    try:
        from metricbatch.dashboard import render_for_pipeline

        rendered = render_for_pipeline(pipeline, out, window_seconds=DEMO_DASHBOARD_WINDOW_SECONDS)
    except ImportError:
        from metricbatch.dashboard.render import MATPLOTLIB_MISSING

        stream.write(f"{MATPLOTLIB_MISSING}\n")
        return None, {}
    except ConfigurationError as exc:
        stream.write(f"dashboard not rendered: {exc}\n")
        return None, {}
    values = {
        w.title: {r.label: r.latest for r in w.rows if r.visible} for w in rendered.widgets if w.view == "singleValue"
    }
    return str(rendered.path.resolve()), values


def _batcher_line(report: dict[str, Any]) -> str:
    if report.get("batcher") == "deployed-package":
        return (
            f"batcher: ran {report['batcher_detail']}; {report['lambda_cold_starts']} cold start(s), "
            f"{report['lambda_timeouts']} timeout(s)"
        )
    return f"batcher: ran the {report.get('batcher_detail', 'in-process handler')}"


def print_report(report: dict[str, Any]) -> None:
    dollars = report["dollars_per_million_metrics"]
    lines = [
        "",
        "metricbatch demo — savings report (embedded AWS, strict CloudWatch)",
        "-" * 68,
        _batcher_line(report),
        f"metrics sent / delivered / lost    {report['metrics_sent']:>10,} / {report['metrics_delivered']:,} / "
        f"{report['metrics_lost']:,}",
        f"series read back exactly           {report['series_exact']:>10,} of {report['series']:,}",
        f"SQS send requests                  {report['sqs_send_requests']:>10,}",
        f"batcher invocations                {report['lambda_invocations']:>10,}",
        f"DLQ messages                       {report['dlq_messages']:>10,}",
        "",
        f"{'design':<34}{'PutMetricData calls':>20}{'$ per million metrics':>24}",
        f"{'one call per metric':<34}{report['direct_put_metric_data_calls']:>20,.0f}{dollars['direct']:>24.4f}",
        f"{'old batcher (20 per call)':<34}{report['old_batcher_put_metric_data_calls']:>20,.0f}"
        f"{dollars['old-batcher-20']:>24.4f}",
        f"{'metricbatch (SQS + Lambda incl.)':<34}{report['put_metric_data_calls']:>20,}"
        f"{dollars['metricbatch']:>24.4f}",
        "",
        f"PutMetricData calls saved: {report['api_calls_saved']:,.0f} (metrics delivered less calls made): "
        f"{report['reduction_vs_direct_pct']:.3f}% fewer than one per metric, "
        f"{report['reduction_vs_old_batcher_pct']:.2f}% fewer than the old batcher.",
        "Custom-metric storage ($0.30 per metric-month) is the same for every design: batching does not change it.",
        f"finished in {report['elapsed_seconds']:.1f} s",
    ]
    print("\n".join(lines))

"""``metricbatch plan``: the cost and capacity model for a workload (arithmetic in metricbatch/cli/costs.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from metricbatch.cli import arguments
from metricbatch.cli.costs import (
    DEFAULT_DISTINCT_VALUES,
    DEFAULT_PRODUCERS_PER_SERIES,
    TARGET_QUOTA_SHARE,
    FleetPlan,
    PlanInputs,
    fleet_plan,
    plan,
)
from metricbatch.deploy import settings_for
from metricbatch.env import ROUND_SECONDS
from metricbatch.limits import (
    LOG_EVENT_OVERHEAD_BYTES,
    MAX_BATCHING_WINDOW_SECONDS,
    MAX_LAMBDA_MEMORY_MB,
    MAX_SQS_BATCH_SIZE,
    MIN_LAMBDA_MEMORY_MB,
    PRICE_CUSTOM_METRIC_MONTH,
    PRICE_LOGS_INGESTION_PER_GB,
    PUT_METRIC_DATA_TPS_QUOTA,
)

_DESIGN_LABELS = {
    "direct": "1 one PutMetricData per metric",
    "old-batcher-20": "2 old batcher (20 per call)",
    "naive-queue": "3 naive queue (1 metric/message)",
    "metricbatch": "4 metricbatch",
    "emf-per-request": "5 EMF, a document per request",
    "emf-aggregated": "6 EMF aggregated (emf mode)",
}


def register(subparsers: Any) -> None:
    defaults = settings_for("dev")
    parser = subparsers.add_parser("plan", help="messages, invocations, PutMetricData TPS and dollars for a workload")
    parser.add_argument(
        "--rate", type=arguments.positive_float, required=True, metavar="METRICS_PER_S",
        help="metrics per second, all producers together",
    )  # fmt: skip
    parser.add_argument(
        "--series", type=arguments.positive_int, required=True, metavar="N",
        help="distinct metric series (namespace, name, dimensions, unit)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=arguments.batch_size, default=defaults.batch_size,
        help=f"the event source's batch size, 1..{MAX_SQS_BATCH_SIZE:,} (default {defaults.batch_size})",
    )  # fmt: skip
    parser.add_argument(
        "--window", type=arguments.window_seconds, default=float(defaults.batching_window_seconds),
        help=f"batching window in seconds, 0..{MAX_BATCHING_WINDOW_SECONDS} (default "
        f"{defaults.batching_window_seconds}; at least 1 with a batch size above 10)",
    )  # fmt: skip
    parser.add_argument(
        "--producers", type=arguments.positive_int, default=1, help="processes running a producer (default 1)"
    )
    parser.add_argument(
        "--producers-per-series", type=arguments.positive_int, default=None, metavar="N",
        help=f"producers that emit each series (default: {DEFAULT_PRODUCERS_PER_SERIES}, at most --producers)",
    )  # fmt: skip
    parser.add_argument(
        "--distinct-values", type=arguments.positive_int, default=DEFAULT_DISTINCT_VALUES, metavar="N",
        help=f"distinct values a series has in a minute, at most (default {DEFAULT_DISTINCT_VALUES})",
    )  # fmt: skip
    parser.add_argument(
        "--memory", type=arguments.memory_mb, default=defaults.function_memory_mb,
        help=f"batcher memory in MB, {MIN_LAMBDA_MEMORY_MB}..{MAX_LAMBDA_MEMORY_MB:,} "
        f"(default {defaults.function_memory_mb})",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the model as one JSON object")
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    arguments.check_batch_window(args.parser, args.batch_size, args.window)
    result = plan(
        PlanInputs(
            rate=args.rate,
            series=args.series,
            batch_size=args.batch_size,
            window_seconds=args.window,
            producers=args.producers,
            memory_mb=args.memory,
            producers_per_series=args.producers_per_series,
        )
    )
    fleet = fleet_plan(
        rate=args.rate,
        series=args.series,
        producers=args.producers,
        producers_per_series=args.producers_per_series,
        distinct_values=args.distinct_values,
        memory_mb=args.memory,
    )
    if args.json:
        print(json.dumps({**result.as_dict(), **fleet_fields(fleet)}, sort_keys=True))
        return 0
    ours = result.design("metricbatch")
    lines = [
        f"metricbatch plan — {args.rate:,.0f} metrics/s over {args.series:,} series, batch {result.inputs.batch_size}, "
        f"window {result.inputs.window_seconds:g} s",
        "-" * 78,
        f"metrics per SQS message            {result.metrics_per_message:>14,.0f}  "
        f"({result.message_bytes / 1024:,.1f} KiB)",
        f"SQS messages / s                   {result.messages_per_second:>14,.2f}",
        f"batcher invocations / s            {result.invocations_per_second:>14,.3f}  "
        f"({result.metrics_per_invocation:,.0f} metrics each)",
        f"batcher concurrency (avg)          {result.concurrency:>14,.3f}  "
        f"({result.handler_seconds * 1000:,.0f} ms each)",
        f"PutMetricData / s (metricbatch)    {ours.put_metric_data_per_second:>14,.3f}  "
        f"of the {PUT_METRIC_DATA_TPS_QUOTA} TPS quota",
        "",
        f"{'design':<36}{'PutMetricData/s':>16}{'$/month':>14}",
    ]
    for design in result.designs:
        flag = "  over quota!" if design.over_tps_quota else ""
        if design.log_bytes_per_second:
            flag += f"  {design.log_gb_per_month:,.2f} log GB/month"
        lines.append(
            f"{_DESIGN_LABELS[design.design]:<36}{design.put_metric_data_per_second:>16,.2f}"
            f"{design.monthly.dollars:>14,.2f}{flag}"
        )
    lines += [
        "",
        f"custom-metric storage: {args.series:,} series x ${PRICE_CUSTOM_METRIC_MONTH:.2f} = "
        f"${result.storage_dollars_per_month:,.2f}/month for every design (batching does not change it)",
        "month = 730 h; SQS billed per 64 KiB chunk incl. idle long polls; Lambda arm64; EMF = CloudWatch Logs "
        f"ingestion at ${PRICE_LOGS_INGESTION_PER_GB:.2f}/GB incl. {LOG_EVENT_OVERHEAD_BYTES} B per log event.",
    ]
    mode, why = result.cheapest_mode()
    lines.append(f"cheapest mode for this workload: {mode} — {why}")
    lines += fleet_lines(fleet)
    lines += [f"WARNING: {w}" for w in result.warnings]
    print("\n".join(lines))
    return 0


# --- issue 27: the floor and the scale setting ---------------------------------------------------------------------
def fleet_fields(fleet: FleetPlan) -> dict[str, Any]:
    """``--json`` fields: the floor, the recommended setting (its own rate and dollars), today's and the fleet model."""
    fields = fleet.as_dict()
    return {
        "floor_put_metric_data_per_second": fields["floor_put_metric_data_per_second"],
        "recommended": fields["recommended"],
        "fleet": {"today": fields["today"], "floor_dollars_per_month": fields["floor_dollars_per_month"]},
    }


def fleet_lines(fleet: FleetPlan) -> list[str]:
    floor, today, best = fleet.floor_put_metric_data_per_second, fleet.today, fleet.recommended
    quota = PUT_METRIC_DATA_TPS_QUOTA

    def row(label: str, rates: float, dollars: float) -> str:
        over = rates / floor if floor else 0.0
        return (
            f"{label:<36}{rates:>12,.2f}/s {over:>7,.1f}x floor {100 * rates / quota:>6,.1f}% quota ${dollars:>11,.2f}"
        )

    producers_per_series = today.inputs.emitters
    lines = [
        "",
        f"PutMetricData against the floor (one datum per series-minute; {producers_per_series} producer(s) per series, "
        f"producer round {today.inputs.round_seconds:g} s)",
        row("floor", floor, fleet.floor_dollars_per_month),
        row("today (1 queue, 5 s round)", today.put_metric_data_per_second, today.rates.monthly.dollars),
    ]
    if best is today:
        lines.append("recommended: keep today's setting (a minute-aligned round and shards would not save enough)")
    else:
        lines += [
            row(
                f"-c shards={best.inputs.shards} ({best.inputs.round_seconds:g} s round)",
                best.put_metric_data_per_second,
                best.rates.monthly.dollars,
            ),
            f"recommended: -c shards={best.inputs.shards}; producers read METRICBATCH_QUEUE_URLS and "
            f"{ROUND_SECONDS}={best.inputs.round_seconds:g} from the stack's outputs "
            f"(metrics then wait up to a minute in each producer; see README, Deploy)",
        ]
    if best.put_metric_data_per_second > TARGET_QUOTA_SHARE * quota:
        lines.append(
            f"WARNING: {best.put_metric_data_per_second:,.0f} PutMetricData/s is over half the {quota} TPS quota"
        )
    return lines

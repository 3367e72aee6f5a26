"""``metricbatch savings``: what a deployed pipeline saved, from its own metrics.

Reads the batcher's EMF self-metrics (namespace ``MetricBatch``, dimension ``service``) and the ``AWS/SQS`` and
``AWS/Lambda`` metrics of the environment's queue and function, then prints the gross saving (PutMetricData calls
not made), the pipeline's own cost (SQS requests, Lambda requests and GB-seconds) and the net saving, per day and
projected per month.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from metricbatch.aws.session import aws_session
from metricbatch.batcher.self_metrics import (
    METRICS_PUBLISHED,
    METRICS_RECEIVED,
    METRICS_REJECTED,
    PUT_METRIC_DATA_CALLS,
    SERVICE_DIMENSION,
    api_calls_saved,
)
from metricbatch.cli import arguments
from metricbatch.cli.arguments import REGION_FLAG, add_region_argument
from metricbatch.cli.costs import SECONDS_PER_MONTH, DesignCost, gb_seconds
from metricbatch.cli.stacks import StackNotFoundError, describe_stack
from metricbatch.deploy import ENVIRONMENTS
from metricbatch.env import SELF_METRICS_NAMESPACE, SERVICE_NAME

logger = logging.getLogger(__name__)

# ApiCallsSaved is not read: it is derived from MetricsPublished and PutMetricDataCalls, by its definition.
SELF_METRICS = (METRICS_RECEIVED, METRICS_PUBLISHED, PUT_METRIC_DATA_CALLS, METRICS_REJECTED)
# Billed SQS requests: every send, receive (empty ones too) and delete; the AWS/SQS metrics count messages, so a
# message stands for one request (an upper bound: batches of up to 10 cost one request).
SQS_METRICS = ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted", "NumberOfEmptyReceives")
LAMBDA_METRICS = ("Invocations", "Duration")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_NAMES = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
DAYS_PER_MONTH = SECONDS_PER_MONTH / 86400


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("savings", help="gross saving, pipeline cost and net saving of a deployment")
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod, or local)")
    parser.add_argument("--since", default="7d", help="look-back period, e.g. 7d, 24h, 90m (default 7d)")
    parser.add_argument("--service", help="the self-metrics' service dimension (default metricbatch-<env>)")
    parser.add_argument("--queue-name", help="the pipeline's queue (default: from the stack's outputs)")
    parser.add_argument("--dlq-name", help="the pipeline's dead-letter queue (default: from the stack's outputs)")
    parser.add_argument("--function-name", help="the batcher function (default: from the stack's resources)")
    parser.add_argument(
        "--memory", type=arguments.memory_mb, help="batcher memory in MB (default: the environment's setting)"
    )
    add_region_argument(parser)
    parser.add_argument("--json", action="store_true", help="end with the report as one JSON line")
    parser.set_defaults(func=run)


def parse_since(text: str) -> int:
    """Seconds in a look-back like ``7d``, ``24h`` or ``90m``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"--since must look like 7d, 24h or 90m, got {text!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2) or "d"]


def format_duration(seconds: int) -> str:
    """A look-back in the largest unit that divides it: ``1 hour``, ``90 minutes``, ``7 days``."""
    for name, size in _DURATION_NAMES:
        if seconds % size == 0:
            count = seconds // size
            return f"{count:,} {name}{'' if count == 1 else 's'}"
    raise AssertionError("seconds divide every whole number")


@dataclass
class SavingsReport:
    env: str
    service: str
    period_seconds: int
    queue_name: str | None
    function_name: str | None
    memory_mb: int
    dlq_name: str | None = None
    metrics_received: float = 0.0
    metrics_published: float = 0.0
    metrics_rejected: float = 0.0
    put_metric_data_calls: float = 0.0
    sqs_requests: float = 0.0
    lambda_invocations: float = 0.0
    lambda_duration_ms: float = 0.0
    missing: list[str] = field(default_factory=list)

    @property
    def days(self) -> float:
        return self.period_seconds / 86400

    @property
    def api_calls_saved(self) -> float:
        """The batcher's definition: metrics published less the PutMetricData calls that published them."""
        return api_calls_saved(self.metrics_published, self.put_metric_data_calls)

    @property
    def pipeline(self) -> DesignCost:
        """What the deployment cost, priced by the cost model."""
        return DesignCost(
            "metricbatch",
            put_metric_data_calls=self.put_metric_data_calls,
            sqs_requests=self.sqs_requests,
            lambda_invocations=self.lambda_invocations,
            lambda_gb_seconds=gb_seconds(self.lambda_duration_ms / 1000, self.memory_mb),
        )

    @property
    def direct(self) -> DesignCost:
        """The same metrics published with one PutMetricData call each."""
        return DesignCost("direct", put_metric_data_calls=self.metrics_published)

    @property
    def gross_saving(self) -> float:
        """Dollars of the PutMetricData calls not made."""
        return self.direct.put_metric_data_dollars - self.pipeline.put_metric_data_dollars

    @property
    def sqs_dollars(self) -> float:
        return self.pipeline.sqs_dollars

    @property
    def lambda_dollars(self) -> float:
        return self.pipeline.lambda_dollars

    @property
    def pipeline_cost(self) -> float:
        return self.sqs_dollars + self.lambda_dollars

    @property
    def net_saving(self) -> float:
        return self.direct.dollars - self.pipeline.dollars

    def as_dict(self) -> dict[str, Any]:
        per_day = 1 / self.days if self.days else 0.0
        money = {
            "gross_saving": self.gross_saving,
            "pipeline_cost": self.pipeline_cost,
            "sqs_dollars": self.sqs_dollars,
            "lambda_dollars": self.lambda_dollars,
            "net_saving": self.net_saving,
        }
        return {
            **asdict(self),
            "api_calls_saved": self.api_calls_saved,
            **money,
            "per_day": {k: v * per_day for k, v in money.items()},
            "per_month": {k: v * per_day * DAYS_PER_MONTH for k, v in money.items()},
        }


def _sum(cloudwatch: Any, namespace: str, name: str, dimensions: dict[str, str], start: float, end: float) -> float:
    end += 60  # include the current minute: a datum's timestamp may lie a little ahead of this clock
    period = max(60, int((end - start + 59) // 60 * 60))
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in response.get("Datapoints", [])))


def resolve_names(cloudformation: Any, env: str) -> tuple[str | None, str | None]:
    """Queue name (from the QueueUrl output) and batcher function name (from the stack's resources).

    Raises StackNotFoundError when the environment's stack is not deployed (a report of zeros would mislead).
    """
    stack = describe_stack(cloudformation, env)
    outputs = stack.get("Outputs", [])
    queue_url = next((o["OutputValue"] for o in outputs if o["OutputKey"].startswith("QueueUrl")), None)
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1] if queue_url else None
    resources = cloudformation.describe_stack_resources(StackName=stack["StackName"])["StackResources"]
    functions = [r for r in resources if r["ResourceType"] == "AWS::Lambda::Function"]
    batcher = [r for r in functions if "batcher" in r["LogicalResourceId"].lower()] or functions
    function_name = batcher[0]["PhysicalResourceId"] if batcher else None
    return queue_name, function_name


def resolve_dlq_name(cloudformation: Any, env: str) -> str | None:
    """The dead-letter queue's name, from the stack's DeadLetterQueueUrl output."""
    outputs = describe_stack(cloudformation, env).get("Outputs", [])
    url = next((o["OutputValue"] for o in outputs if o["OutputKey"].startswith("DeadLetterQueueUrl")), None)
    return url.rstrip("/").rsplit("/", 1)[-1] if url else None


def collect(
    cloudwatch: Any,
    *,
    env: str,
    period_seconds: int,
    service: str | None = None,
    queue_name: str | None = None,
    dlq_name: str | None = None,
    function_name: str | None = None,
    memory_mb: int | None = None,
    now: float | None = None,
) -> SavingsReport:
    """Read the metrics of one deployment and build the report (absent metrics count as zero and are listed)."""
    end = time.time() if now is None else now
    start = end - period_seconds
    settings = ENVIRONMENTS.get(env)
    report = SavingsReport(
        env=env,
        service=service or f"{SERVICE_NAME}-{env}",
        period_seconds=period_seconds,
        queue_name=queue_name,
        function_name=function_name,
        memory_mb=memory_mb or (settings.function_memory_mb if settings else 256),
        dlq_name=dlq_name,
    )
    namespace = settings.self_metrics_namespace if settings else SELF_METRICS_NAMESPACE
    values = {
        name: _sum(cloudwatch, namespace, name, {SERVICE_DIMENSION: report.service}, start, end)
        for name in SELF_METRICS
    }
    report.metrics_received = values[METRICS_RECEIVED]
    report.metrics_published = values[METRICS_PUBLISHED]
    report.metrics_rejected = values[METRICS_REJECTED]
    report.put_metric_data_calls = values[PUT_METRIC_DATA_CALLS]
    if not report.metrics_received:
        report.missing.append(f"{namespace} self-metrics (service={report.service})")
    if queue_name:
        sqs = [_sum(cloudwatch, "AWS/SQS", name, {"QueueName": queue_name}, start, end) for name in SQS_METRICS]
        # The batcher's own sends to the DLQ (messages it sets aside) are billed requests; SQS's redrive moves are
        # not counted in NumberOfMessagesSent (and not billed as sends). The dashboard counts the same.
        if dlq_name:
            sqs.append(_sum(cloudwatch, "AWS/SQS", "NumberOfMessagesSent", {"QueueName": dlq_name}, start, end))
        report.sqs_requests = sum(sqs)
        if not any(sqs):
            report.missing.append(f"AWS/SQS metrics of queue {queue_name}")
    else:
        report.missing.append("AWS/SQS metrics (no queue name: pass --queue-name)")
    if function_name:
        dims = {"FunctionName": function_name}
        report.lambda_invocations = _sum(cloudwatch, "AWS/Lambda", "Invocations", dims, start, end)
        report.lambda_duration_ms = _sum(cloudwatch, "AWS/Lambda", "Duration", dims, start, end)
        if not report.lambda_invocations:
            report.missing.append(f"AWS/Lambda metrics of function {function_name}")
    else:
        report.missing.append("AWS/Lambda metrics (no function name: pass --function-name)")
    return report


def run(args: argparse.Namespace) -> int:
    try:
        period = parse_since(args.since)
    except ValueError as exc:
        print(f"metricbatch savings: {exc}", file=sys.stderr)
        return 2
    session = aws_session(args.region, region_flag=REGION_FLAG)
    queue_name, function_name, dlq_name = args.queue_name, args.function_name, args.dlq_name
    if (queue_name is None or function_name is None) and args.env in ENVIRONMENTS:
        try:
            found_queue, found_function = resolve_names(session.client("cloudformation"), args.env)
            dlq_name = dlq_name or resolve_dlq_name(session.client("cloudformation"), args.env)
        except StackNotFoundError as exc:
            print(f"metricbatch savings: {exc}; or name a pipeline deployed otherwise with --queue-name and "
                  "--function-name", file=sys.stderr)  # fmt: skip
            return 2
        queue_name, function_name = queue_name or found_queue, function_name or found_function
    report = collect(
        session.client("cloudwatch"),
        env=args.env,
        period_seconds=period,
        service=args.service,
        queue_name=queue_name,
        dlq_name=dlq_name,
        function_name=function_name,
        memory_mb=args.memory,
    )
    print_report(report)
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    return 0


def print_report(report: SavingsReport) -> None:
    data = report.as_dict()
    day, month = data["per_day"], data["per_month"]
    lines = [
        f"metricbatch savings — {report.env} (service {report.service}), last {format_duration(report.period_seconds)}",
        "-" * 72,
        f"metrics received                 {report.metrics_received:>14,.0f}",
        f"metrics published                {report.metrics_published:>14,.0f}",
        f"PutMetricData calls made         {report.put_metric_data_calls:>14,.0f}",
        f"PutMetricData calls saved        {report.api_calls_saved:>14,.0f}",
        f"SQS requests (upper bound)       {report.sqs_requests:>14,.0f}",
        f"batcher invocations              {report.lambda_invocations:>14,.0f}  "
        f"({report.lambda_duration_ms / 1000:,.1f} s at {report.memory_mb} MB)",
        "",
        f"{'':<30}{'period':>12}{'per day':>12}{'per month':>12}",
    ]
    for key, label in (
        ("gross_saving", "gross saving"),
        ("pipeline_cost", "pipeline's own cost"),
        ("net_saving", "net saving"),
    ):
        lines.append(f"{label:<30}{data[key]:>12.4f}{day[key]:>12.4f}{month[key]:>12.2f}")
    lines.append("dollars; month = 730 h; custom-metric storage ($0.30/metric-month) is not changed by batching.")
    lines += [f"note: no data for {m}: counted as zero" for m in report.missing]
    print("\n".join(lines))

"""``metricbatch dashboard``: the synthesized savings dashboard, rendered from CloudWatch as a picture.

Reads the ``DashboardBody`` of ``cdk.out/<env>`` (synthesized when missing) and evaluates every widget against the
CloudWatch that boto3 reaches: the local one that ``metricbatch local`` exports (AWS_ENDPOINT_URL), by default
with that pipeline's names (queue ``metricbatch``, function ``metricbatch-batcher``, service
``metricbatch-local``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from metricbatch.aws.session import aws_session
from metricbatch.cli.arguments import REGION_FLAG, add_region_argument
from metricbatch.cli.savings import parse_since
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME
from metricbatch.worker.poller import PollerConfig

DEFAULT_QUEUE_NAME = "metricbatch"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dashboard", help="render the synthesized savings dashboard from local CloudWatch")
    parser.add_argument("--env", default="dev", help="environment whose template to render (default dev)")
    parser.add_argument("--out", type=Path, default=None, help="FILE.png or FILE.html (default dashboard-ENV.png)")
    parser.add_argument("--assembly", type=Path, default=None, help="cloud assembly folder (default cdk.out/ENV)")
    parser.add_argument("--since", default=None, help="time range, e.g. 7d, 24h, 90m (default: the dashboard's)")
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE_NAME, help="local name of the pipeline's queue")
    parser.add_argument("--dlq-name", default=None, help="local name of its DLQ (default QUEUE-dlq)")
    parser.add_argument(
        "--function-name", default=PollerConfig().function_name, help="local name of the batcher function"
    )
    parser.add_argument(
        "--service",
        default=None,
        help="the self-metrics' service dimension locally (default: the template's, as the deployed package that "
        f"`metricbatch local` runs has it; {LOCAL_SERVICE_NAME} for `local --in-process`)",
    )
    add_region_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from metricbatch.dashboard.render import MATPLOTLIB_MISSING

        print(MATPLOTLIB_MISSING, file=sys.stderr)
        return 2
    from metricbatch.dashboard import LocalNames, assembly_for, render_dashboard
    from metricbatch.dashboard.render import summary_lines

    if args.out is not None and args.out.suffix.lower() not in (".png", ".html"):
        print(f"metricbatch dashboard: --out must end in .png or .html, got {args.out}", file=sys.stderr)
        return 2
    session = aws_session(args.region, region_flag=REGION_FLAG)
    names = LocalNames(
        queue_name=args.queue_name,
        dlq_name=args.dlq_name or f"{args.queue_name}-dlq",
        function_name=args.function_name,
        region=session.region_name,
        service_name=args.service,
    )
    start = end = None
    if args.since is not None:
        try:
            seconds = parse_since(args.since)
        except ValueError as exc:
            print(f"metricbatch dashboard: {exc}", file=sys.stderr)
            return 2
        import time

        end = (int(time.time()) // 60 + 1) * 60
        start = end - seconds
    assembly = args.assembly or assembly_for(args.env)
    out = args.out or Path(f"dashboard-{args.env}.png")
    rendered = render_dashboard(
        session.client("cloudwatch"), assembly=assembly, names=names, out=out, start=start, end=end
    )
    for line in summary_lines(rendered.widgets):
        print(line)
    print(f"dashboard written to {rendered.path.resolve()}")
    return 0

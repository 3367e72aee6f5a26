"""``metricbatch local``: the pipeline on this machine, kept running for your own services to use."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from types import FrameType
from typing import Any

from metricbatch.cli import arguments
from metricbatch.emulator.local_pipeline import LOCAL_NAMESPACE, LocalPipeline, find_assembly
from metricbatch.exceptions import InvalidMetricError
from metricbatch.limits import MAX_BATCHING_WINDOW_SECONDS, MAX_SQS_BATCH_SIZE
from metricbatch.validation import check_namespace


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run embedded AWS + poller + batcher until Ctrl-C")
    parser.add_argument(
        "--port", type=arguments.port, default=0, help="loopback port for the embedded AWS (default: a free one)"
    )
    parser.add_argument(
        "--window", type=arguments.window_seconds, default=None,
        help=f"batching window in seconds, 0..{MAX_BATCHING_WINDOW_SECONDS} (default: the dev stack's 30)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=arguments.batch_size, default=None,
        help=f"records per batcher invocation, 1..{MAX_SQS_BATCH_SIZE:,} (default: the dev stack's 20)",
    )  # fmt: skip
    parser.add_argument(
        "--namespace", default=LOCAL_NAMESPACE,
        help=f"default namespace exported as METRICBATCH_NAMESPACE for your services (default {LOCAL_NAMESPACE})",
    )  # fmt: skip
    parser.add_argument(
        "--interval", type=arguments.positive_float, default=2.0,
        help="seconds between updates of the one-line summary on stderr (default 2)",
    )  # fmt: skip
    arguments.add_batcher_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        check_namespace(args.namespace)
    except InvalidMetricError as exc:
        print(f"metricbatch local: --namespace: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with LocalPipeline(
        port=args.port,
        window_seconds=args.window,
        batch_size=args.batch_size,
        namespace=args.namespace,
        assembly=find_assembly(args.assembly, in_process=args.in_process),
    ) as pipeline:
        pipeline.warm_batcher()  # a package that cannot start fails here, naming its handler
        pipeline.start_polling()
        print(f"# batcher: {pipeline.describe_batcher()}", flush=True)
        print("# metricbatch local pipeline is running; in another shell:", flush=True)
        for key, value in pipeline.env().items():
            print(f"export {key}={shlex.quote(value)}", flush=True)
        print(f"# DLQ: {pipeline.dlq_url}", flush=True)
        # The AWS CLI v1 does not follow AWS_ENDPOINT_URL throughout (its sqs commands go to AWS's own endpoint).
        print(f"# AWS CLI v1: aws --endpoint-url {pipeline.aws.endpoint_url} ...", flush=True)
        print("# Ctrl-C stops", flush=True)
        while not stop.wait(args.interval):
            pipeline.publish_service_metrics()  # AWS/SQS counts, for `metricbatch dashboard` in another shell
            ledger = pipeline.aws.ledger.snapshot()["calls"]
            stats = pipeline.poller.stats
            sys.stderr.write(
                f"\rqueue {pipeline.queue_depth():>6}  dlq {pipeline.dlq_depth():>4}"
                f"  invocations {stats.invocations:>6}"
                f"  records {stats.records:>7}  PutMetricData {ledger.get('cloudwatch:PutMetricData', 0):>6}  "
            )
            sys.stderr.flush()
        sys.stderr.write("\nstopping\n")
    return 0

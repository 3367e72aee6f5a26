"""``metricbatch poll --queue-url URL``: run the batcher as a long-lived worker against any SQS queue."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

import boto3

from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("poll", help="poll a queue and run the batcher on its batches (a worker)")
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--window", type=float, default=30.0, help="batching window, seconds")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--function-timeout", type=float, default=60.0)
    parser.add_argument("--region", default=None, help="default: boto3's (AWS_REGION, profile)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from metricbatch.batcher.handler import handler

    session = boto3.session.Session(region_name=args.region)
    sqs = session.client("sqs")
    poller = SqsEventSourcePoller(
        sqs,
        args.queue_url,
        handler,
        config=PollerConfig(
            batch_size=args.batch_size,
            window_seconds=args.window,
            concurrency=args.concurrency,
            function_timeout_seconds=args.function_timeout,
        ),
        region=session.region_name or "us-east-1",
        emf_sink=None,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    poller.start()
    print(f"polling {args.queue_url} (batch {args.batch_size}, window {args.window:g}s); Ctrl-C stops", file=sys.stderr)
    stop.wait()
    poller.stop()
    s = poller.stats
    print(f"stopped: {s.invocations} invocations, {s.records} records, {s.item_failures} failures", file=sys.stderr)
    return 0

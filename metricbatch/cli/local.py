"""``metricbatch local``: the pipeline on this machine, kept running for your own services to use."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from metricbatch.emulator.stack import LocalPipeline


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run embedded AWS + poller + batcher until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="loopback port for the embedded AWS (default: free)")
    parser.add_argument("--window", type=float, default=None, help="batching window, seconds (default: dev's 30)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between summary updates")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with LocalPipeline(port=args.port, window_seconds=args.window, batch_size=args.batch_size) as pipeline:
        pipeline.start_polling()
        print("# metricbatch local pipeline is running; in another shell:", flush=True)
        for key, value in pipeline.env().items():
            print(f"export {key}={value}", flush=True)
        print(f"# DLQ: {pipeline.dlq_url}", flush=True)
        print("# Ctrl-C stops", flush=True)
        while not stop.wait(args.interval):
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

"""``metricbatch send NAME VALUE``: one metric from the shell, through the queue like any other."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from metricbatch.env import NAMESPACE, QUEUE_URL
from metricbatch.exceptions import ConfigurationError, MetricBatchError
from metricbatch.producer.producer import MetricProducer


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("send", help="send one metric to the pipeline's queue")
    parser.add_argument("name", help="metric name, e.g. Latency")
    parser.add_argument("value", type=float, help="the value, a number")
    parser.add_argument("--unit", default="None", help="a CloudWatch unit, e.g. Milliseconds or Count (default None)")
    parser.add_argument("--namespace", default=None, help=f"the metric's namespace (default: {NAMESPACE})")
    parser.add_argument(
        "--dimension", action="append", default=[], metavar="K=V", help="a dimension; repeat for several"
    )
    parser.add_argument(
        "--resolution", type=int, default=60, choices=(1, 60), help="storage resolution in seconds (default 60)"
    )
    parser.add_argument("--queue-url", default=None, help=f"the pipeline's queue (default: {QUEUE_URL})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dimensions = {}
    for item in args.dimension:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"metricbatch send: --dimension takes K=V, got {item!r}", file=sys.stderr)
            return 2
        dimensions[key] = value
    # Said here in the command line's terms (the library's messages name its keyword arguments).
    if not (args.queue_url or os.environ.get(QUEUE_URL)):
        raise ConfigurationError(f"no queue: pass --queue-url or set {QUEUE_URL}")
    if not (args.namespace or os.environ.get(NAMESPACE)):
        raise ConfigurationError(f"no namespace: pass --namespace or set {NAMESPACE}")
    try:
        producer = MetricProducer(args.queue_url, namespace=args.namespace, handle_sigterm=False)
        producer.send_metric(
            args.name,
            args.value,
            unit=args.unit,
            dimensions=dimensions or None,
            storage_resolution=args.resolution,
        )
        done = producer.flush(timeout=30)
    except MetricBatchError as exc:
        print(f"metricbatch send: {exc}", file=sys.stderr)
        return 2
    stats = producer.stats()
    producer.close()
    if not done or stats["dropped"]:
        print(f"metricbatch send: not delivered ({stats})", file=sys.stderr)
        return 1
    how = "queued" if stats["sent"] else "published directly (fallback)"
    print(f"{how}: {args.name}={args.value:g} {args.unit}")
    return 0

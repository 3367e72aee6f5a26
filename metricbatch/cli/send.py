"""``metricbatch send NAME VALUE``: one metric from the shell, through the queue like any other (or ``--mode emf``
to print it as an Embedded Metric Format line, ``memory``/``off`` to only validate it)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from metricbatch.aws.session import aws_session
from metricbatch.env import MODE, NAMESPACE, QUEUE_URL
from metricbatch.exceptions import ConfigurationError, MetricBatchError
from metricbatch.producer.config import EMF, MEMORY, MODES, OFF, SQS, ProducerConfig
from metricbatch.producer.producer import MetricProducer

# What each mode did with the metric, said on success.
_DONE = {
    EMF: "written to stdout as an EMF line",
    MEMORY: "validated and captured in memory (this process only)",
    OFF: "validated and discarded (mode off)",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("send", help="send one metric to the pipeline's queue (or print it as EMF)")
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
    parser.add_argument(
        "--mode", choices=MODES, default=None,
        help=f"sqs: the queue; emf: print an Embedded Metric Format line on stdout; memory, off: only validate "
        f"(default: {MODE}, else sqs)",
    )  # fmt: skip
    parser.set_defaults(func=run)


@contextmanager
def _library_logs_quiet(verbose: bool) -> Iterator[None]:
    """The producer's own log lines say what this command prints once itself (shown with -v)."""
    producer_logger = logging.getLogger("metricbatch.producer")
    level = producer_logger.level
    if not verbose:
        producer_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        producer_logger.setLevel(level)


def _check_settings(args: argparse.Namespace) -> None:
    """Said here in the command line's terms (the library's messages name its keyword arguments)."""
    config = ProducerConfig.from_env(queue_url=args.queue_url, mode=args.mode)
    env_mode = os.environ.get(MODE, "").strip().lower()
    if not args.mode and env_mode and env_mode not in MODES:
        raise ConfigurationError(f"{MODE}={os.environ[MODE]!r} is not a mode: pass --mode or set {', '.join(MODES)}")
    if config.mode_reason and not config.queue_url and (args.mode or env_mode in ("", "sqs")):
        raise ConfigurationError(f"no queue: pass --queue-url or set {QUEUE_URL} (or choose --mode emf, memory or off)")
    if config.mode_reason:
        raise ConfigurationError(config.mode_reason)
    if not (args.namespace or os.environ.get(NAMESPACE)):
        raise ConfigurationError(f"no namespace: pass --namespace or set {NAMESPACE}")
    if config.mode == SQS:
        aws_session()  # a region, or one line naming AWS_REGION / AWS_DEFAULT_REGION


def run(args: argparse.Namespace) -> int:
    dimensions = {}
    for item in args.dimension:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"metricbatch send: --dimension takes K=V, got {item!r}", file=sys.stderr)
            return 2
        dimensions[key] = value
    _check_settings(args)
    with _library_logs_quiet(getattr(args, "verbose", False)):
        try:
            producer = MetricProducer(args.queue_url, namespace=args.namespace, mode=args.mode, handle_sigterm=False)
            if producer.stats()["mode_reason"]:  # e.g. no AWS region
                raise ConfigurationError(producer.stats()["mode_reason"])
            producer.send_metric(
                args.name, args.value, unit=args.unit, dimensions=dimensions or None, storage_resolution=args.resolution
            )
            done = producer.flush(timeout=30)
        except MetricBatchError as exc:
            print(f"metricbatch send: {exc}", file=sys.stderr)
            return 2
        stats = producer.stats()
        producer.close()
    what = f"{args.name}={args.value:g} {args.unit}"
    if stats["config_error"]:  # a setting no retry can fix: nothing was sent, nothing published another way
        print(f"metricbatch send: not sent, {stats['config_error']}", file=sys.stderr)
        return 2
    if not done or stats["dropped"]:
        print(f"metricbatch send: not delivered ({stats})", file=sys.stderr)
        return 1
    if producer.mode in _DONE:
        print(f"{_DONE[producer.mode]}: {what}", file=sys.stderr if producer.mode == EMF else sys.stdout)
        return 0
    how = "queued" if stats["sent"] else "published directly (fallback)"
    print(f"{how}: {what}")
    return 0

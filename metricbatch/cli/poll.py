"""``metricbatch poll --queue-url URL``: run the batcher as a long-lived worker against any SQS queue.

The worker needs a dead-letter queue: without one, a message with one invalid metric fails as a whole on every
receive and its valid metrics are never published. It uses ``--dlq-url``, else ``METRICBATCH_DLQ_URL``, else the
queue's own redrive target (RedrivePolicy ``deadLetterTargetArn``), and refuses to start without any of them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from metricbatch.aws.session import DEFAULT_REGION_VARIABLE, aws_session
from metricbatch.cli import arguments
from metricbatch.cli.arguments import REGION_FLAG, add_region_argument
from metricbatch.cli.dlq.queues import dead_letter_queue_url
from metricbatch.env import DLQ_URL, QUEUE_URL
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import MAX_LAMBDA_TIMEOUT_SECONDS, MAX_SQS_BATCH_SIZE
from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("poll", help="poll a queue and run the batcher on its batches (a worker)")
    parser.add_argument("--queue-url", default=None, help=f"the pipeline's queue (default: {QUEUE_URL})")
    parser.add_argument(
        "--dlq-url", default=None,
        help=f"where invalid metrics are set aside (default: {DLQ_URL}, else the queue's redrive target; "
        "required one way or the other)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=arguments.batch_size, default=20,
        help=f"records per handler invocation, 1..{MAX_SQS_BATCH_SIZE:,} (default 20)",
    )  # fmt: skip
    parser.add_argument(
        "--window", type=arguments.window_seconds, default=30.0, help="batching window, seconds (default 30)"
    )
    parser.add_argument(
        "--concurrency", type=arguments.positive_int, default=1, help="pollers gathering batches at once (default 1)"
    )
    parser.add_argument(
        "--function-timeout", type=arguments.function_timeout, default=60.0,
        help=f"the handler's deadline per batch in seconds, up to {MAX_LAMBDA_TIMEOUT_SECONDS} (default 60)",
    )  # fmt: skip
    add_region_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    queue_url = args.queue_url or os.environ.get(QUEUE_URL)
    if not queue_url:
        raise ConfigurationError(f"no queue to poll: pass --queue-url or set {QUEUE_URL}")
    session = aws_session(args.region, region_flag=REGION_FLAG)
    sqs = session.client("sqs")
    dlq_url = args.dlq_url or os.environ.get(DLQ_URL) or dead_letter_queue_url(sqs, queue_url)
    if not dlq_url:
        raise ConfigurationError(
            f"no dead-letter queue: pass --dlq-url or set {DLQ_URL}, or give {queue_url} a redrive policy "
            "(without one, a message with an invalid metric fails as a whole and its valid metrics are never published)"
        )
    # The handler reads both from the environment, as in Lambda; its clients then use the region found here.
    os.environ[DLQ_URL] = dlq_url
    os.environ[DEFAULT_REGION_VARIABLE] = session.region_name
    from metricbatch.batcher.handler import handler

    poller = SqsEventSourcePoller(
        sqs,
        queue_url,
        handler,
        config=PollerConfig(
            batch_size=args.batch_size,
            window_seconds=args.window,
            concurrency=args.concurrency,
            function_timeout_seconds=args.function_timeout,
        ),
        region=session.region_name,
        emf_sink=None,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    poller.start()
    print(
        f"polling {queue_url} (batch {args.batch_size}, window {args.window:g}s, DLQ {dlq_url}); Ctrl-C stops",
        file=sys.stderr,
    )
    stop.wait()
    poller.stop()
    s = poller.stats
    print(f"stopped: {s.invocations} invocations, {s.records} records, {s.item_failures} failures", file=sys.stderr)
    return 0

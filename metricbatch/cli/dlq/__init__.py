"""``metricbatch dlq inspect|redrive``: what is in the dead-letter queue, and moving it back once the cause is fixed.

One module a job: ``inspection`` (counts by origin, samples; nothing deleted), ``redrive`` (StartMessageMoveTask or
a paced receive -> send -> delete loop), ``pacing`` (rate limit, Ctrl-C), ``queues`` (finding the queues).
"""

from __future__ import annotations

import argparse
from typing import Any

from metricbatch.cli.arguments import add_region_argument, non_negative_int, positive_float, positive_int
from metricbatch.cli.dlq.inspection import run_inspect
from metricbatch.cli.dlq.redrive import run_redrive


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("dlq", help="inspect the dead-letter queue or redrive it")
    actions = parser.add_subparsers(
        dest="dlq_action", required=True, metavar="ACTION", help="inspect (only looks) or redrive (moves messages)"
    )

    inspect = actions.add_parser("inspect", help="count DLQ messages by reason and show samples (nothing is deleted)")
    _add_queue_arguments(inspect)
    inspect.add_argument("--samples", type=non_negative_int, default=5, help="messages to show (default 5)")
    inspect.add_argument("--max", type=positive_int, default=1000, help="messages to look at, at most (default 1000)")
    inspect.add_argument("--json", action="store_true", help="print the result as one JSON object")
    inspect.set_defaults(func=run_inspect)

    redrive = actions.add_parser("redrive", help="move DLQ messages back to the queue (at-least-once)")
    _add_queue_arguments(redrive)
    redrive.add_argument("--to", default=None, metavar="URL", help="target queue (default with --env: its queue)")
    redrive.add_argument("--rate", type=_rate, default=50.0, metavar="N/s", help="messages per second (default 50)")
    redrive.add_argument(
        "--max", type=positive_int, default=None, help="move at most this many messages (implies --loop)"
    )
    redrive.add_argument("--loop", action="store_true", help="skip StartMessageMoveTask; receive, send, delete")
    redrive.set_defaults(func=run_redrive)


def _add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--env", default=None, help="environment whose stack MetricBatching-<env> owns the DLQ")
    target.add_argument("--queue-url", default=None, help="the DLQ's URL")
    add_region_argument(parser)


def _rate(text: str) -> float:
    return positive_float(text.removesuffix("/s"))  # 50 or 50/s

"""Argument types for the verbs: numbers are checked when parsed, so a bad one exits 2 naming its flag and value."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from metricbatch.limits import (
    MAX_BATCHING_WINDOW_SECONDS,
    MAX_LAMBDA_MEMORY_MB,
    MAX_LAMBDA_TIMEOUT_SECONDS,
    MAX_SQS_BATCH_SIZE,
    MIN_LAMBDA_MEMORY_MB,
    event_source_problems,
)

MAX_PORT = 65_535
# The verbs that talk to AWS take the region as this option; the no-region error names it.
REGION_FLAG = "--region"


def add_region_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        REGION_FLAG, default=None, help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region)"
    )


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in low..high (no upper bound when high is None)."""
    bounds = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text!r}") from None
        if number < low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text!r}")
        return number

    return parse


def float_in(low: float, high: float | None = None, *, low_inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number above (or from) low, up to high."""
    start = f"from {low:g}" if low_inclusive else f"above {low:g}"
    bounds = f"{start} to {high:g}" if high is not None else start

    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        too_low = number < low if low_inclusive else number <= low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(f"must be a number {bounds}, got {text!r}")
        return number

    return parse


positive_int = int_in(1)
non_negative_int = int_in(0)
positive_float = float_in(0.0, low_inclusive=False)
batch_size = int_in(1, MAX_SQS_BATCH_SIZE)
window_seconds = float_in(0.0, MAX_BATCHING_WINDOW_SECONDS)
memory_mb = int_in(MIN_LAMBDA_MEMORY_MB, MAX_LAMBDA_MEMORY_MB)
function_timeout = float_in(0.0, MAX_LAMBDA_TIMEOUT_SECONDS, low_inclusive=False)
port = int_in(0, MAX_PORT)


def check_batch_window(parser: argparse.ArgumentParser, size: int | None, window: float | None) -> None:
    """What Lambda refuses in a batch size and window (``limits.event_source_problems``), the command line refuses."""
    if size is not None and window is not None:
        for problem in event_source_problems(size, window):
            parser.error(f"argument --window: {problem}")


def add_batcher_options(parser: argparse.ArgumentParser) -> None:
    """--assembly / --in-process: how `demo` and `local` run the batcher."""
    parser.add_argument(
        "--assembly", default=None, metavar="DIR",
        help="cloud assembly whose batcher package to run under AWS's runtime interface client, as Lambda runs it "
        "(default: $METRICBATCH_LOCAL_ASSEMBLY, else ./cdk.out/dev if synthesized)",
    )  # fmt: skip
    parser.add_argument(
        "--in-process", action="store_true",
        help="run the batcher's handler in this process from the installed package instead (the fallback when "
        "there is no cloud assembly, e.g. after a pip install)",
    )  # fmt: skip

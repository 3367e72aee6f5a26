"""The ``metricbatch`` command line (also ``python -m metricbatch``); one module per verb."""

from __future__ import annotations

from metricbatch.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

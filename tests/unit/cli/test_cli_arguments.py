"""The command line's own surface: help on every argument, inputs checked before anything runs, human output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest

from metricbatch.cli import build_parser, main
from metricbatch.cli.savings import SavingsReport, print_report

Parsers = Iterator[tuple[str, argparse.ArgumentParser]]


def _parsers(parser: argparse.ArgumentParser, path: str = "metricbatch") -> Parsers:
    yield path, parser
    for action in parser._actions:  # argparse keeps its tree private; this test only reads it
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_argument_of_every_verb_has_help() -> None:
    # GIVEN the whole argparse tree WHEN looking at each argument THEN each one says what it is for
    missing = []
    seen = 0
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            seen += 1
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert seen > 40  # the walk really reached the verbs' arguments
    assert not missing, missing


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["plan", "--rate", "-5", "--series", "10"], "--rate"),
        (["plan", "--rate", "0", "--series", "10"], "--rate"),
        (["plan", "--rate", "nan", "--series", "10"], "--rate"),
        (["plan", "--rate", "100", "--series", "0"], "--series"),
        (["plan", "--rate", "100", "--series", "10", "--batch-size", "0"], "--batch-size"),
        (["plan", "--rate", "100", "--series", "10", "--batch-size", "10001"], "--batch-size"),
        (["plan", "--rate", "100", "--series", "10", "--window", "-1"], "--window"),
        (["plan", "--rate", "100", "--series", "10", "--window", "301"], "--window"),
        (["plan", "--rate", "100", "--series", "10", "--producers", "0"], "--producers"),
        (["plan", "--rate", "100", "--series", "10", "--memory", "64"], "--memory"),
        (["plan", "--rate", "100", "--series", "10", "--memory", "20000"], "--memory"),
        (["demo", "--metrics", "0"], "--metrics"),
        (["demo", "--services", "-1"], "--services"),
        (["local", "--batch-size", "0"], "--batch-size"),
        (["local", "--window", "-2"], "--window"),
        (["local", "--interval", "0"], "--interval"),
        (["local", "--port", "70000"], "--port"),
        (["poll", "--queue-url", "http://q", "--concurrency", "0"], "--concurrency"),
        (["poll", "--queue-url", "http://q", "--function-timeout", "-1"], "--function-timeout"),
        (["savings", "--env", "dev", "--memory", "0"], "--memory"),
        (["dlq", "inspect", "--queue-url", "http://q", "--max", "0"], "--max"),
        (["dlq", "inspect", "--queue-url", "http://q", "--samples", "-1"], "--samples"),
    ],
)
def test_out_of_range_inputs_are_refused_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a verb gets a number outside what it can mean
    with pytest.raises(SystemExit) as exited:
        main(argv)
    # THEN it exits 2 before doing anything, with one message naming the flag and the value
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"argument {named}" in captured.err
    assert argv[argv.index(named) + 1] in captured.err


def test_plan_accepts_the_edges_of_its_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--rate", "0.5", "--series", "1", "--batch-size", "10", "--window", "0", "--json"]
    assert main([*argv, "--memory", "128"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(design["monthly"]["dollars"] >= 0 for design in report["designs"].values())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "last 1 hour"), (7 * 86400, "last 7 days"), (5400, "last 90 minutes"), (86400, "last 1 day"),
     (45, "last 45 seconds"), (2 * 3600, "last 2 hours")],
)  # fmt: skip
def test_savings_report_names_its_period_in_human_units(
    seconds: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = SavingsReport(
        env="dev", service="metricbatch-dev", period_seconds=seconds, queue_name="q", function_name="f", memory_mb=256
    )
    print_report(report)
    header = capsys.readouterr().out.splitlines()[0]
    assert header.endswith(f", {text}"), header
    assert "day(s)" not in header


def test_plan_with_batch_size_over_10_needs_a_window(capsys: pytest.CaptureFixture[str]) -> None:
    # Lambda refuses a batch size above 10 with a batching window under 1 s: the model would describe no real setup
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--rate", "100", "--series", "10", "--batch-size", "20", "--window", "0.5"])
    assert exited.value.code == 2
    assert "--window" in capsys.readouterr().err

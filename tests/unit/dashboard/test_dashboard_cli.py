"""`metricbatch dashboard` without its extra says which one, in one line."""

from __future__ import annotations

import sys

import pytest

from metricbatch.cli import main


def test_without_matplotlib_the_verb_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert main(["dashboard", "--out", "never.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["metricbatch dashboard needs matplotlib: pip install 'metricbatch[local]'"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "dashboard.txt"], "metricbatch dashboard: --out must end in .png or .html, got dashboard.txt"),
        (["--since", "soon"], "metricbatch dashboard: --since must look like 7d, 24h or 90m, got 'soon'"),
    ],
)
def test_bad_options_exit_2_naming_the_flag(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert main(["dashboard", *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]

"""Verbs that read a deployed environment say so when its stack is not there, instead of reporting zeros."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from metricbatch.cli import main
from metricbatch.emulator.local_pipeline import LocalPipeline


@pytest.fixture
def aws_env(pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPipeline]:
    for key, value in pipeline.env().items():
        monkeypatch.setenv(key, value)
    yield pipeline


@pytest.mark.parametrize("argv", [["savings", "--env", "dev"], ["dlq", "inspect", "--env", "staging"]])
def test_a_verb_on_an_environment_without_a_stack_fails_naming_it(
    aws_env: LocalPipeline, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an account and region where no MetricBatching-<env> stack exists
    # WHEN asking about that environment
    rc = main(argv)
    # THEN it exits non-zero with one line that names the stack, the region and that it does not exist
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    stack = f"MetricBatching-{argv[argv.index('--env') + 1]}"
    assert f"stack {stack} does not exist in us-east-1" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_savings_with_explicit_names_needs_no_stack(aws_env: LocalPipeline, capsys: pytest.CaptureFixture[str]) -> None:
    # A pipeline deployed some other way: the flags name its queue and function, and the stack is not consulted
    rc = main(["savings", "--env", "dev", "--queue-name", "q", "--function-name", "f", "--since", "1h"])
    assert rc == 0
    assert "last 1 hour" in capsys.readouterr().out

"""cfn-lint and checkov over every synthesized template: nothing found that is not accepted with a reason.

One run of each validator covers every variant plus a copy of the prod template stripped of its acceptances,
which shows the validators really check these templates and that the acceptances are what keeps them quiet.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra.validate import (
    VALIDATOR_TIMEOUT_SECONDS,
    cfn_lint_command,
    checkov_command,
    require_checkov,
)

if TYPE_CHECKING:
    from conftest import SynthCache

VARIANTS = ("dev", "staging", "prod", "custom", "kms", "shards")
STRIPPED = "stripped"  # the prod template without its checkov and cfn-lint Metadata
FUNCTION_SKIPS = {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_173"}
# Without a customer managed key: both queues (CKV_AWS_27) and the log group (CKV_AWS_158) too.
SQS_MANAGED_SKIPS = FUNCTION_SKIPS | {"CKV_AWS_27", "CKV_AWS_158"}


@dataclass(frozen=True)
class Staged:
    folder: Path
    templates: dict[str, Path]  # variant -> template file in folder


@pytest.fixture(scope="module")
def staged_templates(synth: SynthCache, tmp_path_factory: pytest.TempPathFactory) -> Staged:
    folder = tmp_path_factory.mktemp("templates")
    templates: dict[str, Path] = {}
    for variant in VARIANTS:
        result = synth(variant)
        assert result.returncode == 0, result.stderr
        templates[variant] = folder / f"{variant}.template.json"
        templates[variant].write_text((result.outdir / f"{result.stack_name}.template.json").read_text())
    stripped = json.loads(templates["prod"].read_text())
    for resource in stripped["Resources"].values():
        for tool in ("checkov", "cfn-lint"):
            resource.get("Metadata", {}).pop(tool, None)
    templates[STRIPPED] = folder / f"{STRIPPED}.template.json"
    templates[STRIPPED].write_text(json.dumps(stripped, indent=1))
    return Staged(folder, templates)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=VALIDATOR_TIMEOUT_SECONDS, check=False)


def test_cfn_lint_finds_nothing_but_what_is_ignored_with_a_reason(staged_templates: Staged) -> None:
    done = _run(cfn_lint_command(list(staged_templates.templates.values())))
    findings: dict[str, set[str]] = defaultdict(set)
    for line in done.stdout.splitlines():  # parseable: file:line:col:line:col:RULE:message
        file, *_, rule, _message = line.split(":", 6)
        findings[Path(file).name.removesuffix(".template.json")].add(rule)
    assert dict(findings) == {STRIPPED: {"W3005"}}, done.stdout + done.stderr


def _checkov_results(staged_templates: Staged) -> dict[str, Any]:
    require_checkov()
    done = _run(checkov_command(staged_templates.folder, output="json"))
    assert done.stdout.strip(), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["summary"]["parsing_errors"] == 0
    return report


def test_checkov_finds_nothing_and_every_skip_says_why(staged_templates: Staged) -> None:
    report = _checkov_results(staged_templates)
    by_variant: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
        for check in report["results"][outcome]:
            variant = Path(check["file_path"]).name.removesuffix(".template.json")
            by_variant[variant][outcome].append(check)

    for variant in VARIANTS:
        results = by_variant[variant]
        assert len(results["passed_checks"]) > 20, variant  # it really read the template
        assert results["failed_checks"] == [], [c["check_id"] for c in results["failed_checks"]]
        expected = FUNCTION_SKIPS if variant in {"custom", "kms"} else SQS_MANAGED_SKIPS
        assert {c["check_id"] for c in results["skipped_checks"]} == expected, variant
        for check in results["skipped_checks"]:
            comment = check["check_result"]["suppress_comment"]
            assert comment and comment != "No comment provided", check["check_id"]
    # Without the acceptances, the same checks fail on the prod template: the skips are what keeps it clean.
    stripped = by_variant[STRIPPED]
    assert stripped["skipped_checks"] == []
    assert {c["check_id"] for c in stripped["failed_checks"]} == SQS_MANAGED_SKIPS

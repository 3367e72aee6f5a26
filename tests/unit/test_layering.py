"""The package's sides stay apart: the Lambda never loads producer code, and the shared core imports neither side."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "metricbatch"
SHARED_CORE = ("exceptions", "limits", "env", "wire", "validation", "threads", "aws", "cloudwatch")
# Which parts each part may import; cli and emulator may import everything.
FORBIDDEN = {
    "producer": ("batcher", "worker", "cli", "emulator", "deploy", "dashboard"),
    "batcher": ("producer", "worker", "cli", "emulator", "deploy", "dashboard"),
    "worker": ("producer", "batcher", "cli", "emulator", "dashboard"),
    # metricbatch.testing and the pytest plugin are the producer's test helpers
    **dict.fromkeys(("testing", "pytest_plugin"), ("batcher", "worker", "cli", "emulator", "deploy", "dashboard")),
    **dict.fromkeys(SHARED_CORE, ("producer", "batcher", "worker", "cli", "emulator", "deploy", "dashboard")),
    # dashboard rendering is tooling: it reads a template and a CloudWatch, never runs a side of the pipeline
    "dashboard": ("producer", "batcher", "worker", "cli"),
}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "metricbatch" else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _fresh_modules(statement: str) -> set[str]:
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "probe"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("source", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_side_it_must_not_see(source: Path) -> None:
    relative = source.relative_to(PACKAGE)
    own = relative.parts[0].removesuffix(".py")
    forbidden = FORBIDDEN.get(own, ())
    bad = sorted(m for m in _imports(source) if _part(m) in forbidden)
    assert not bad, f"{relative} ({own}) imports {bad}"


def test_the_lambda_handler_loads_no_producer_cli_emulator_or_worker_code() -> None:
    modules = _fresh_modules("import lambdas.batcher.handler")
    assert "metricbatch.batcher.handler" in modules  # the probe really imported the handler
    leaked = sorted(m for m in modules if _part(m) in {"producer", "cli", "emulator", "worker", "deploy", "dashboard"})
    assert not leaked, leaked


def test_import_metricbatch_is_lazy_and_the_public_api_still_resolves() -> None:
    modules = _fresh_modules("import metricbatch")
    assert not {m for m in modules if m.startswith(("metricbatch.", "boto3", "botocore"))}
    import metricbatch

    for name in metricbatch.__all__:
        assert getattr(metricbatch, name) is not None, name
    assert metricbatch.send_metric.__module__ == "metricbatch.producer.default"
    with pytest.raises(AttributeError):
        _ = metricbatch.no_such_name

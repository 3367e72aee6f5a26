"""Independent validators over synthesized templates: cfn-lint and checkov (offline), one command line each.

``python -m infra.validate cdk.out/prod [more assemblies or templates...]`` runs both and exits non-zero on any
finding; ``make deploy`` runs it on the assembly it is about to deploy and ``make test`` on every variant.
Findings that do not fit this stack are accepted in the template itself, each with its reason
(``infra.nag.skip_checkov``, ``infra.nag.ignore_cfn_lint``), so a new finding fails here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
CFN_LINT: Final = Path(sys.executable).parent / "cfn-lint"
# checkov pins dependencies that clash with ours: its own venv (requirements-checkov.txt, made by `make setup`).
CHECKOV: Final = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
VALIDATOR_TIMEOUT_SECONDS: Final = 300


def templates_of(paths: Iterable[Path]) -> list[Path]:
    """The CloudFormation templates of cloud assemblies (``*.template.json``), or the template files given."""
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.template.json")) if path.is_dir() else [path]
    if not found:
        raise FileNotFoundError(f"no *.template.json in {[str(p) for p in paths]}; synthesize first")
    return found


def cfn_lint_command(templates: list[Path]) -> list[str]:
    return [str(CFN_LINT), "--format", "parseable", *map(str, templates)]


def checkov_command(directory: Path, *, output: str = "cli") -> list[str]:
    """checkov over every template in ``directory``: CloudFormation checks only, no downloads, no API key."""
    readable = ["--quiet", "--compact"] if output == "cli" else []  # failed checks only, without code excerpts
    return [
        str(CHECKOV),
        "--directory",
        str(directory),
        "--framework",
        "cloudformation",
        "--skip-download",
        *readable,
        "--output",
        output,
    ]


def require_checkov() -> None:
    if not CHECKOV.is_file():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `make setup` (it installs requirements-checkov.txt)")


def staged(templates: list[Path], directory: Path) -> Path:
    """Copy templates into one folder (checkov scans folders), named so findings say which template they are in."""
    for template in templates:
        shutil.copy2(template, directory / f"{template.parent.name}-{template.name}")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="cloud assembly folders (cdk.out/ENV) or templates")
    args = parser.parse_args(argv)
    templates = templates_of(args.paths)
    require_checkov()
    print(f"cfn-lint and checkov over {', '.join(map(str, templates))}", flush=True)
    lint = subprocess.run(cfn_lint_command(templates), check=False, timeout=VALIDATOR_TIMEOUT_SECONDS)
    with tempfile.TemporaryDirectory() as folder:
        scan = subprocess.run(
            checkov_command(staged(templates, Path(folder))), check=False, timeout=VALIDATOR_TIMEOUT_SECONDS
        )
    return 1 if lint.returncode or scan.returncode else 0


if __name__ == "__main__":
    sys.exit(main())

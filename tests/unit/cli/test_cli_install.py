"""The command line as a plain `pip install metricbatch` sees it: its version, and verbs that need an extra.

The installed wheel is checked the same way outside the repository (tests/e2e/test_installed_packages.py).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

import metricbatch
from metricbatch.cli import main
from metricbatch.env import LOCAL_ASSEMBLY

REPO = Path(__file__).resolve().parents[3]


def test_version_is_single_sourced_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN pyproject.toml, which takes its version from the package (no second copy to forget)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "metricbatch.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", metricbatch.__version__)
    # WHEN asked for its version THEN the command line prints that one and exits 0
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"metricbatch {metricbatch.__version__}"


def test_the_typed_marker_ships_with_the_package() -> None:
    assert (Path(metricbatch.__file__).parent / "py.typed").is_file()
    assert "Apache License" in (REPO / "LICENSE").read_text()[:200]


@pytest.mark.parametrize("argv", [["demo", "--metrics", "10"], ["local", "--port", "0"]])
@pytest.mark.parametrize("missing", ["moto", "aws_lambda_powertools"])
def test_a_verb_whose_extra_is_missing_names_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    missing: str,
) -> None:
    # GIVEN an install without the `local` extra (importing its modules fails as on a plain pip install), run where
    # no cloud assembly is at hand (else the deployed package, which brings its own Powertools, runs the batcher)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LOCAL_ASSEMBLY, raising=False)
    for name in list(sys.modules):
        if name == missing or name.startswith(f"{missing}."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)
    for name in [m for m in sys.modules if m.startswith(("metricbatch.emulator", "metricbatch.batcher"))]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, so they meet the missing module
    # WHEN the verb runs THEN one line names the extra to install, exit 2, no traceback
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"metricbatch {argv[0]}: needs {missing}, which is not installed: pip install 'metricbatch[local]'"]

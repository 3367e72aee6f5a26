"""The batcher's deployment package: its runtime dependencies, built once, and the batcher's own code.

The package is self-contained: boto3, botocore and Powertools at the versions pinned in ``requirements.txt``
travel with the code, so the deployed function runs the SDK the tests ran, never the Lambda runtime's own
(``/var/task`` comes first on the runtime's ``sys.path``). Every dependency is pure Python, so a
platform-independent ``pip install`` for the function's Python and architecture needs no Docker.

Synth runs several times per test session, so the dependency tree is built once per content of
``requirements.txt`` and build settings, into ``build/lambda-deps/<digest>/`` (gitignored), by
``make lambda-deps`` (``python -m infra.artifact build-deps``); bundling copies it, or fails saying what to run.
Nothing here imports CDK: the bench and the tests assemble the same package without synthesizing.
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from metricbatch.exceptions import ConfigurationError

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# The function's runtime and architecture (infra/pipeline.py deploys exactly these; a test checks they agree).
LAMBDA_PYTHON_VERSION: Final = "3.13"
LAMBDA_PLATFORM: Final = "manylinux2014_aarch64"
REQUIREMENTS_FILE: Final = "requirements.txt"
DEPENDENCIES_DIR: Final = "build/lambda-deps"
# The services the batcher creates clients for; botocore's and boto3's models of the other ~440 services are
# dropped (19 MB of the 28 MB installed). The artifact test runs the handler against both from the bundle alone.
BUNDLED_AWS_SERVICES: Final = ("cloudwatch", "sqs")

BATCHER_PACKAGE: Final = "metricbatch"
# The parts of the package the batcher runs: the shared core and the batcher side. The producer, the CLI, the
# emulator and the worker stay out of the asset (and off the handler's import path).
BATCHER_PACKAGE_PARTS: Final = (
    "__init__.py",
    "exceptions.py",
    "limits.py",
    "env.py",
    "wire.py",
    "validation.py",
    "aws",
    "cloudwatch",
    "batcher",
)
BATCHER_HANDLER_FILE: Final = "lambdas/batcher/handler.py"
_IGNORE: Final = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
_PIN: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")
_NATIVE_SUFFIXES: Final = (".so", ".pyd", ".dylib", ".dll")
# Bump when build_dependencies(), check_dependency_tree() or trim() change what a built tree holds: trees are
# reused by digest, and this is part of it.
_TREE_FORMAT: Final = 1


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (``typing_extensions`` == ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(source_root: Path = REPO_ROOT) -> dict[str, str]:
    """Normalized name -> version of every line of ``requirements.txt``; each must be an exact ``==`` pin."""
    path = source_root / REQUIREMENTS_FILE
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ConfigurationError(f"{path}: {line!r} is not an exact pin (name==version); the bundle must be")
        pins[normalize(match[1])] = match[2]
    return pins


def dependencies_digest(source_root: Path = REPO_ROOT) -> str:
    """Content hash of what decides the dependency tree: the pins, the target platform and the trimming."""
    digest = hashlib.sha256((source_root / REQUIREMENTS_FILE).read_bytes())
    spec = (LAMBDA_PYTHON_VERSION, LAMBDA_PLATFORM, BUNDLED_AWS_SERVICES, _TREE_FORMAT)
    digest.update(repr(spec).encode())
    return digest.hexdigest()[:16]


def dependencies_dir(source_root: Path = REPO_ROOT) -> Path:
    """The built dependency tree for the current pins; raises ConfigurationError if it was not built."""
    path = source_root / DEPENDENCIES_DIR / dependencies_digest(source_root)
    if not path.is_dir():
        raise ConfigurationError(
            f"the batcher's dependencies for the current {REQUIREMENTS_FILE} are not built ({path} is missing): "
            "run `make lambda-deps` (python -m infra.artifact build-deps), then synthesize again"
        )
    return path


def installed_distributions(tree: Path) -> dict[str, str]:
    """Normalized name -> version of each ``*.dist-info`` in a tree (read from its METADATA)."""
    found: dict[str, str] = {}
    for info in sorted(tree.glob("*.dist-info")):
        metadata = email.parser.HeaderParser().parsestr((info / "METADATA").read_text())
        found[normalize(metadata["Name"])] = metadata["Version"]
    return found


def build_dependencies(source_root: Path = REPO_ROOT, *, python: str = sys.executable) -> Path:
    """Install the pinned requirements for the function's platform once; return the tree (reused if present)."""
    final = source_root / DEPENDENCIES_DIR / dependencies_digest(source_root)
    if final.is_dir():
        return final
    staging = final.with_name(f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(staging),
        "--requirement",
        str(source_root / REQUIREMENTS_FILE),
        # Wheels for the function's interpreter and architecture, never built here; .pyc would be for this
        # interpreter, not the function's, so none are written.
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--no-compile",
    ]
    subprocess.run(command, check=True)
    check_dependency_tree(staging, pinned_requirements(source_root))
    trim(staging)
    staging.rename(final)
    return final


def check_dependency_tree(tree: Path, pins: dict[str, str]) -> None:
    """Every installed distribution is pinned at its version, and pure Python (no native code for another OS)."""
    installed = installed_distributions(tree)
    if installed != pins:
        unpinned = sorted(set(installed) - set(pins))
        differing = sorted(n for n in set(installed) & set(pins) if installed[n] != pins[n])
        missing = sorted(set(pins) - set(installed))
        raise ConfigurationError(
            f"the bundle's distributions differ from {REQUIREMENTS_FILE}: unpinned {unpinned}, "
            f"other version {differing}, not installed {missing}; pin every dependency exactly"
        )
    for info in tree.glob("*.dist-info"):
        wheel = (info / "WHEEL").read_text()
        tags = re.findall(r"^Tag: (\S+)$", wheel, flags=re.MULTILINE)
        if "Root-Is-Purelib: true" not in wheel or not all(tag.endswith("-none-any") for tag in tags):
            raise ConfigurationError(f"{info.name} is not pure Python (tags {tags}); it would need a platform build")
    native = [p.relative_to(tree) for p in tree.rglob("*") if p.suffix in _NATIVE_SUFFIXES]
    if native:
        raise ConfigurationError(f"native code in the bundle: {native[:5]}; it would need a platform build")


def trim(tree: Path) -> None:
    """Drop what the batcher never loads: console scripts, bytecode, and the models of services it never calls."""
    shutil.rmtree(tree / "bin", ignore_errors=True)
    for cache in list(tree.rglob("__pycache__")):
        shutil.rmtree(cache)
    for data in (tree / "botocore" / "data", tree / "boto3" / "data"):
        for service in data.iterdir():
            if service.is_dir() and service.name not in BUNDLED_AWS_SERVICES:
                shutil.rmtree(service)


def assemble(output_dir: Path, *, source_root: Path = REPO_ROOT, dependencies: Path | None = None) -> None:
    """Write the deployment package into ``output_dir``: the dependency tree, the handler, the batcher's parts.

    Our code keeps its repository layout (``lambdas/batcher/handler.py``, ``metricbatch/...``); everything else in
    the repository stays out.
    """
    handler = source_root / BATCHER_HANDLER_FILE
    package = source_root / BATCHER_PACKAGE
    if not handler.is_file():
        raise ConfigurationError(f"batcher handler {handler} is missing; nothing to deploy")
    if not (package / "__init__.py").is_file():
        raise ConfigurationError(f"package {package} is missing")
    deps = dependencies or dependencies_dir(source_root)
    shutil.copytree(deps, output_dir, ignore=_IGNORE, dirs_exist_ok=True)
    for part in BATCHER_PACKAGE_PARTS:
        _copy(package / part, output_dir / BATCHER_PACKAGE / part, missing=f"batcher source {package / part}")
    handler_dir = handler.parent.relative_to(source_root)
    shutil.copytree(handler.parent, output_dir / handler_dir, ignore=_IGNORE, dirs_exist_ok=True)
    for parent in handler_dir.parents:  # keep lambdas/ a regular package if it is one in the repository
        init = source_root / parent / "__init__.py"
        if parent != Path(".") and init.is_file():
            shutil.copy2(init, output_dir / parent / "__init__.py")


def _copy(source: Path, target: Path, *, missing: str) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORE, dirs_exist_ok=True)
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    else:
        raise ConfigurationError(f"{missing} is missing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.artifact", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build-deps", help="install the pinned dependencies for the function once; print the path")
    assemble_parser = commands.add_parser("assemble", help="write the deployment package into a directory")
    assemble_parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    actions: dict[str, Callable[[], Path]] = {
        "build-deps": build_dependencies,
        "assemble": lambda: _assembled(args.output_dir),
    }
    print(actions[args.command]())
    return 0


def _assembled(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    assemble(output_dir)
    return output_dir


if __name__ == "__main__":
    sys.exit(main())

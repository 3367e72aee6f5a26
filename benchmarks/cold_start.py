"""Cold import of the deployed handler, measured the way Lambda pays it: from the deployment package, no bytecode.

Lambda unpacks the package read-only and has no ``.pyc`` for it, so every cold start compiles what it imports.
Each round assembles a fresh package (``infra.artifact.assemble``: the pinned dependencies and our code) and
starts two fresh interpreters with only that folder and the standard library on ``sys.path`` (``-I -S -B``):
one imports boto3, the other boto3 and then the handler. Their order alternates between rounds; the figure is the
median of the per-round differences. Before reporting, each child checks it imported from the package, loaded no
producer-side code and compiled everything from source.

The same round also imports the handler from a byte-compiled copy of the package (``compileall``, as a package
built with bytecode would ship), checking that bytecode was used this time: the figure is what shipping ``.pyc``
would save (the local Lambda runner, like Lambda, runs the package as synthesized, without it).

``python -m benchmarks.cold_start [--rounds 7]`` runs it alone.
"""

from __future__ import annotations

import argparse
import compileall
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from infra.artifact import assemble

HANDLER_MODULE = "lambdas.batcher.handler"
# Runs in the child: time the imports, then report where they came from and whether any bytecode was used.
_CHILD = """
import importlib, json, os, sys, time
package, what, handler = sys.argv[1:4]
sys.path.insert(0, package)
started = time.perf_counter()
import boto3
if what == "handler":
    importlib.import_module(handler)
done = time.perf_counter()
specs = [getattr(module, "__spec__", None) for module in list(sys.modules.values())]
ours = [s for s in specs if s and s.cached and s.cached.startswith(package)]
print(json.dumps({
    "total_s": done - started,
    "boto3_file": boto3.__file__,
    "handler_loaded": "metricbatch.batcher.handler" in sys.modules,
    "producer_loaded": any(m.startswith(("metricbatch.producer", "metricbatch.cli")) for m in sys.modules),
    "bytecode_used": [s.name for s in ours if os.path.exists(s.cached)],
}))
"""


def _child(package: Path, what: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", "-B", *flags, "-c", _CHILD, str(package), what, HANDLER_MODULE],
        capture_output=True,
        text=True,
        check=True,
        cwd=package.parent,
    )


def _measure_compiled(package: Path) -> dict[str, Any]:
    """The handler's import from a copy of the package with bytecode; checks the bytecode was really used."""
    sample: dict[str, Any] = json.loads(_child(package, "handler").stdout.splitlines()[-1])
    if not any(name.startswith("metricbatch.batcher") for name in sample["bytecode_used"]):
        raise RuntimeError("the compiled package's bytecode was not used")
    if not Path(sample["boto3_file"]).is_relative_to(package) or not sample["handler_loaded"]:
        raise RuntimeError(f"the compiled package was not what was imported: {sample}")
    return sample


def _measure(package: Path, what: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(_child(package, what).stdout.splitlines()[-1])
    # The benchmark's own checks: it measured the package, from source, and the handler side only.
    if not Path(sample["boto3_file"]).is_relative_to(package):
        raise RuntimeError(f"boto3 came from {sample['boto3_file']}, not the package")
    if sample["bytecode_used"] or list(package.rglob("*.pyc")):
        raise RuntimeError(f"bytecode was used or written: {sample['bytecode_used'][:3]}")
    if what == "handler" and (not sample["handler_loaded"] or sample["producer_loaded"]):
        raise RuntimeError(f"the handler import loaded the wrong code: {sample}")
    return sample


_PRECOMPILED = "import json, time; t = time.perf_counter(); import boto3; print(json.dumps(time.perf_counter() - t))"


def precompiled_boto3_ms() -> float:
    """``import boto3`` from this venv, whose packages pip compiled: what the runtime's own boto3 costs, roughly."""
    done = subprocess.run([sys.executable, "-I", "-c", _PRECOMPILED], capture_output=True, text=True, check=True)
    return float(done.stdout) * 1000


def import_breakdown(package: Path, top: int = 6) -> list[tuple[str, float]]:
    """Where the handler's import time goes (``-X importtime`` self times after boto3, by top-level package)."""
    lines = _child(package, "handler", "-X", "importtime").stderr.splitlines()
    rows = [re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line) for line in lines]
    parsed = [(int(m[1]), len(m[3]), m[4]) for m in rows if m]
    after_boto3 = next(i for i, (_, depth, name) in enumerate(parsed) if name == "boto3" and depth == 1) + 1
    by_package: Counter[str] = Counter()
    for self_us, _, name in parsed[after_boto3:]:
        parts = name.split(".")
        by_package[".".join(parts[:3]) if parts[0] == "aws_lambda_powertools" else parts[0]] += self_us
    return [(name, us / 1000) for name, us in by_package.most_common(top)]


def cold_import(rounds: int = 7) -> dict[str, Any]:
    """Median over ``rounds`` of (boto3 + handler) - (boto3 alone), fresh package copy and interpreters each round."""
    boto3_ms, handler_ms, differences, precompiled_ms = [], [], [], []
    compiled_ms, bytecode_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="metricbatch-cold-") as scratch:
        for round_number in range(rounds):
            package = Path(scratch) / f"round-{round_number}"
            assemble(package)
            compiled = Path(scratch) / f"round-{round_number}-pyc"
            shutil.copytree(package, compiled)
            compileall.compile_dir(compiled, quiet=2)
            order = ("boto3", "handler", "compiled") if round_number % 2 == 0 else ("compiled", "handler", "boto3")
            samples = {
                what: _measure_compiled(compiled) if what == "compiled" else _measure(package, what) for what in order
            }
            compiled_ms.append(samples["compiled"]["total_s"] * 1000)
            bytecode_ratios.append(samples["handler"]["total_s"] / samples["compiled"]["total_s"])
            shutil.rmtree(compiled)
            boto3_ms.append(samples["boto3"]["total_s"] * 1000)
            handler_ms.append(samples["handler"]["total_s"] * 1000)
            differences.append((samples["handler"]["total_s"] - samples["boto3"]["total_s"]) * 1000)
            precompiled_ms.append(precompiled_boto3_ms())
        breakdown = import_breakdown(package)
        files = [p for p in package.rglob("*") if p.is_file()]
        package_bytes = sum(p.stat().st_size for p in files)
    return {
        "rounds": rounds,
        "boto3_ms": statistics.median(boto3_ms),
        "with_handler_ms": statistics.median(handler_ms),
        "handler_over_boto3_ms": statistics.median(differences),
        "differences_ms": [round(d, 1) for d in differences],
        # The price of bundling the SDK: the same import with bytecode, as the runtime's own boto3 has it.
        "boto3_precompiled_ms": statistics.median(precompiled_ms),
        "breakdown_ms": breakdown,
        # boto3 + handler from a byte-compiled copy: what shipping .pyc would save at each cold start
        "with_handler_bytecode_ms": statistics.median(compiled_ms),
        "without_over_with_bytecode": statistics.median(bytecode_ratios),
        "package_files": len(files),
        "package_bytes": package_bytes,
    }


def describe(result: dict[str, Any]) -> str:
    parts = ", ".join(f"{name} {ms:.0f}" for name, ms in result["breakdown_ms"])
    return (
        f"cold import from the deployment package ({result['package_files']} files, "
        f"{result['package_bytes'] / 1e6:.1f} MB, no .pyc; median of {result['rounds']} rounds): boto3 "
        f"{result['boto3_ms']:.0f} ms, boto3 + handler {result['with_handler_ms']:.0f} ms -> "
        f"+{result['handler_over_boto3_ms']:.0f} ms; where it goes (ms, self time): {parts}; boto3 with .pyc "
        f"(as the runtime's own) {result['boto3_precompiled_ms']:.0f} ms; boto3 + handler from a byte-compiled "
        f"copy {result['with_handler_bytecode_ms']:.0f} ms (without .pyc {result['without_over_with_bytecode']:.1f}x "
        "as long, median of per-round ratios)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    result = cold_import(args.rounds)
    print(describe(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

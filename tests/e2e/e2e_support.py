"""What the end-to-end tests share: running the command line in a child process with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "metricbatch"]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any AWS_* or METRICBATCH_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env.update(extra)
    env["PYTHONPATH"] = str(REPO)
    return env


def read_local_exports(local: subprocess.Popen[str], timeout: float = 60) -> tuple[dict[str, str], str]:
    """The ``export K=V`` lines and the DLQ URL that ``metricbatch local`` prints when it is ready."""
    exports: dict[str, str] = {}
    dlq_url = ""
    assert local.stdout is not None
    deadline = time.monotonic() + timeout
    while not dlq_url and time.monotonic() < deadline:
        line = local.stdout.readline()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            exports[key] = value
        elif line.startswith("# DLQ: "):
            dlq_url = line.split(": ", 1)[1].strip()
    return exports, dlq_url


def start_local(*options: str, assembly: Path | None = None) -> subprocess.Popen[str]:
    """``metricbatch local`` in a child process (stop it with SIGINT, then communicate()); with ``assembly``, its
    batcher is that cloud assembly's package run as Lambda runs it."""
    batcher = ["--assembly", str(assembly)] if assembly is not None else ["--in-process"]
    return subprocess.Popen(
        [*CLI, "local", *batcher, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env({}),
    )


def synth_assembly(outdir: Path, env: str = "dev") -> Path:
    """One environment's cloud assembly, synthesized by the real CDK CLI (~10 s): what `make demo` runs."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # cdk.json runs `python3`
    environment = {
        **os.environ,
        "PATH": path,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", f"env={env}", "-o", str(outdir)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return outdir

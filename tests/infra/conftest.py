"""Templates synthesized by the real CDK CLI (``npx cdk synth``), once per variant per test session.

All variants are synthesized in parallel the first time any of them is asked for (a synth takes 8-10 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from metricbatch.deploy import PipelineSettings, settings_for

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before the in-process tests start jsii
REPO_ROOT = Path(__file__).resolve().parents[2]
# The CDK app imports `infra` from the repository root, as `python3 app.py` does; the in-process tests do the same.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
SYNTH_REGION = "eu-west-1"  # the CLI turns AWS_REGION into CDK_DEFAULT_REGION
SYNTH_TIMEOUT_SECONDS = 240

# Context of the "custom" variant: overrides through the JSON form and a direct key that wins over it.
# Every value differs from the environment's default, so a stack that ignored the setting would show it.
EXISTING_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CUSTOM_OVERRIDES = {
    "allowed_namespaces": ["Shop/", "Payments/"],
    "alarm_email": "oncall@example.com",
    "max_concurrency": 3,
    "max_receive_count": 3,
    "dlq_retention_days": 7,
    "tags": {"team": "observability"},
    "encryption_key": EXISTING_KEY_ARN,
}
CUSTOM_MAX_CONCURRENCY = 7
SHARDS = 3

# Each variant's context, and the settings it must deploy (worked out here, independently of app.py).
VARIANTS: dict[str, list[str]] = {
    "dev": ["-c", "env=dev"],
    "staging": ["-c", "env=staging"],
    "prod": ["-c", "env=prod"],
    "custom": [
        "-c",
        "env=staging",
        "-c",
        f"overrides={json.dumps(CUSTOM_OVERRIDES)}",
        "-c",
        f"max_concurrency={CUSTOM_MAX_CONCURRENCY}",
    ],
    # A key the stack creates, chosen the way an operator would: one context key on the command line.
    "kms": ["-c", "env=prod", "-c", "encryption_key=kms"],
    # The scale setting (issue 27): one context value turns on shard queues and the fleet batching settings.
    "shards": ["-c", "env=prod", "-c", f"shards={SHARDS}"],
}


EXPECTED_SETTINGS: dict[str, PipelineSettings] = {
    "dev": settings_for("dev"),
    "staging": settings_for("staging"),
    "prod": settings_for("prod"),
    "custom": settings_for("staging").with_overrides({**CUSTOM_OVERRIDES, "max_concurrency": CUSTOM_MAX_CONCURRENCY}),
    "kms": settings_for("prod").with_overrides({"encryption_key": "kms"}),
    "shards": settings_for("prod").with_overrides({"shards": SHARDS}),
}


@dataclass(frozen=True)
class SynthResult:
    """One `cdk synth` run: its exit code and output, the cloud assembly, and the settings it should reflect."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    outdir: Path
    settings: PipelineSettings

    @property
    def stack_name(self) -> str:
        (stack,) = [
            name
            for name, artifact in self.manifest["artifacts"].items()
            if artifact["type"] == "aws:cloudformation:stack"
        ]
        return str(stack)

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads((self.outdir / "manifest.json").read_text())
        return manifest

    @property
    def template(self) -> dict[str, Any]:
        template: dict[str, Any] = json.loads((self.outdir / f"{self.stack_name}.template.json").read_text())
        return template

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        """The logical id and definition of the single resource of a type."""
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    @property
    def queue_ids(self) -> tuple[str, str]:
        """Logical ids of the metrics queue (the one with a redrive policy) and of the dead-letter queue."""
        queues = self.resources("AWS::SQS::Queue")
        assert len(queues) == 2, sorted(queues)
        (main,) = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
        (dlq,) = [k for k in queues if k != main]
        return main, dlq

    @property
    def batcher_asset(self) -> Path:
        """The batcher's deployment package as staged in the cloud assembly (the folder CDK zips and uploads)."""
        _, function = self.only("AWS::Lambda::Function")
        return self.outdir / str(function["Metadata"]["aws:asset:path"])

    @property
    def handler(self) -> str:
        _, function = self.only("AWS::Lambda::Function")
        return str(function["Properties"]["Handler"])

    @staticmethod
    def render(value: Any) -> str:
        return render_join(value)


def synth_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # cdk.json runs `python3`
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["AWS_REGION"] = SYNTH_REGION
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["CDK_DISABLE_VERSION_CHECK"] = "1"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        env.pop(name, None)
    return env


class SynthCache:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._results: dict[str, SynthResult] = {}

    def __call__(self, name: str) -> SynthResult:
        if not self._results:
            self._synth_all()
        return self._results[name]

    def _synth_all(self) -> None:
        env = synth_env()
        running = {}
        for name, context in VARIANTS.items():
            outdir = self._root / name
            command = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", *context, "-o", str(outdir)]
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            running[name] = (process, outdir)
        for name, (process, outdir) in running.items():
            stdout, stderr = process.communicate(timeout=SYNTH_TIMEOUT_SECONDS)
            self._results[name] = SynthResult(
                name, process.returncode, stdout, stderr, outdir, settings=EXPECTED_SETTINGS[name]
            )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthCache:
    """Synthesized variants by name: ``dev``, ``staging``, ``prod``, ``custom`` (staging with overrides, an existing
    KMS key among them) and ``kms`` (prod with a key the stack creates)."""
    return SynthCache(tmp_path_factory.mktemp("cdk-synth"))


@pytest.fixture(scope="session", params=["dev", "staging", "prod"])
def env_synth(request: pytest.FixtureRequest, synth: SynthCache) -> SynthResult:
    """Each shipped environment in turn, synthesized with its default settings."""
    result = synth(request.param)
    assert result.returncode == 0, result.stderr
    return result


def render_join(value: Any) -> str:
    """Render an ``Fn::Join`` of strings and tokens, each token replaced by a readable placeholder."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render_join(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return "<token>"

"""The batcher as a cloud assembly deploys it: the function, its package and its SQS event source, read from
``cdk.out`` (what ``cdk deploy`` uploads), so the local runner runs what AWS would run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metricbatch.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

STACK_ARTIFACT_TYPE = "aws:cloudformation:stack"


@dataclass(frozen=True, kw_only=True)
class EventSourceSettings:
    """The SQS event source mapping's settings (``AWS::Lambda::EventSourceMapping``)."""

    queue_id: str  # logical id of the queue it polls
    batch_size: int
    window_seconds: float
    max_concurrency: int | None
    report_batch_item_failures: bool


@dataclass(frozen=True, kw_only=True)
class FunctionDefinition:
    """One ``AWS::Lambda::Function`` of a synthesized template, with its staged package."""

    stack_name: str
    logical_id: str
    asset_dir: Path  # the folder CDK zips and uploads as the function's code
    handler: str
    runtime: str
    architecture: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, Any]  # Environment.Variables as synthesized: strings or unresolved refs
    event_source: EventSourceSettings | None

    @property
    def function_name(self) -> str:
        """The physical name CloudFormation would give it (stack name, logical id; at most 64 characters)."""
        return f"{self.stack_name}-{self.logical_id}"[:64]

    def resolved_environment(self, refs: dict[str, str]) -> dict[str, str]:
        """``Environment.Variables`` with each ``{"Ref": id}`` replaced by ``refs[id]`` (e.g. local queue URLs).

        Raises ConfigurationError naming the variable for a ref with no local counterpart or any other intrinsic.
        """
        resolved: dict[str, str] = {}
        for name, value in self.environment.items():
            if isinstance(value, str):
                resolved[name] = value
            elif isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in refs:
                resolved[name] = refs[value["Ref"]]
            else:
                raise ConfigurationError(
                    f"{self.logical_id}: environment variable {name} is {json.dumps(value)}, which the local runner "
                    f"cannot resolve (it knows refs to {sorted(refs)})"
                )
        return resolved


def differing_sources(asset_dir: Path, package_dir: Path, package: str = "metricbatch") -> list[str]:
    """The package's modules whose copy in the asset differs from ``package_dir`` (e.g. the checkout's): an assembly
    synthesized before the last edit. Modules only one side has are ignored (the asset holds the batcher's part)."""
    differing = []
    for staged in sorted((asset_dir / package).rglob("*.py")):
        relative = staged.relative_to(asset_dir / package)
        current = package_dir / relative
        if current.is_file() and current.read_bytes() != staged.read_bytes():
            differing.append(f"{package}/{relative}")
    return differing


def stack_template(assembly_dir: Path) -> tuple[str, dict[str, Any]]:
    """The name and template of the assembly's one stack."""
    manifest_file = assembly_dir / "manifest.json"
    if not manifest_file.is_file():
        raise ConfigurationError(f"{assembly_dir} is not a cloud assembly (no manifest.json); run `make synth` first")
    manifest = json.loads(manifest_file.read_text())
    stacks = {
        name: artifact
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == STACK_ARTIFACT_TYPE
    }
    if len(stacks) != 1:
        raise ConfigurationError(f"{assembly_dir}: expected one stack, found {sorted(stacks)}")
    ((name, artifact),) = stacks.items()
    template_file = assembly_dir / artifact.get("properties", {}).get("templateFile", f"{name}.template.json")
    template: dict[str, Any] = json.loads(template_file.read_text())
    return name, template


def read_function(assembly_dir: Path | str) -> FunctionDefinition:
    """The function of the assembly that an SQS event source drives (the batcher), with its settings."""
    assembly_dir = Path(assembly_dir).absolute()  # the sandbox starts in its task root
    stack_name, template = stack_template(assembly_dir)
    resources: dict[str, Any] = template.get("Resources", {})
    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Lambda::Function"}
    mappings = [v["Properties"] for v in resources.values() if v.get("Type") == "AWS::Lambda::EventSourceMapping"]
    mapped = {m["FunctionName"].get("Ref") for m in mappings if isinstance(m.get("FunctionName"), dict)}
    candidates = sorted(k for k in functions if k in mapped) or sorted(functions)
    if len(candidates) != 1:
        raise ConfigurationError(f"{assembly_dir}: expected one function behind an event source, found {candidates}")
    logical_id = candidates[0]
    function = functions[logical_id]
    properties = function["Properties"]
    asset_path = function.get("Metadata", {}).get("aws:asset:path")
    if not asset_path:
        raise ConfigurationError(f"{assembly_dir}: {logical_id} has no staged asset (aws:asset:path)")
    asset_dir = assembly_dir / str(asset_path)
    if not asset_dir.is_dir():
        raise ConfigurationError(f"{assembly_dir}: the package of {logical_id} ({asset_dir}) is missing")
    mapping = next((m for m in mappings if m["FunctionName"].get("Ref") == logical_id), None)
    return FunctionDefinition(
        stack_name=stack_name,
        logical_id=logical_id,
        asset_dir=asset_dir,
        handler=str(properties["Handler"]),
        runtime=str(properties.get("Runtime", "")),
        architecture=str((properties.get("Architectures") or ["x86_64"])[0]),
        timeout_seconds=int(properties.get("Timeout", 3)),  # CloudFormation's defaults
        memory_mb=int(properties.get("MemorySize", 128)),
        environment=dict(properties.get("Environment", {}).get("Variables", {})),
        event_source=_event_source(mapping) if mapping is not None else None,
    )


def _event_source(mapping: dict[str, Any]) -> EventSourceSettings:
    source = mapping.get("EventSourceArn", {})
    queue_id = source.get("Fn::GetAtt", [""])[0] if isinstance(source, dict) else ""
    concurrency = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
    return EventSourceSettings(
        queue_id=str(queue_id),
        batch_size=int(mapping.get("BatchSize", 10)),
        window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        max_concurrency=int(concurrency) if concurrency is not None else None,
        report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
    )


def queue_refs(template: dict[str, Any], *, queue_url: str, dlq_url: str) -> dict[str, str]:
    """Logical id -> local URL for the template's queue (the one with a redrive policy) and its dead-letter queue."""
    queues = {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == "AWS::SQS::Queue"}
    main = [k for k, v in queues.items() if "RedrivePolicy" in v.get("Properties", {})]
    if len(main) != 1:
        raise ConfigurationError(f"expected one queue with a redrive policy, found {sorted(main)}")
    target = queues[main[0]]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
    dlq_id = target.get("Fn::GetAtt", [""])[0] if isinstance(target, dict) else ""
    if dlq_id not in queues:
        raise ConfigurationError(f"the redrive target of {main[0]} is not a queue of the template: {target}")
    return {main[0]: queue_url, dlq_id: dlq_url}

"""Queue, dead-letter queue, batcher function, event source mapping and deployment package, per environment."""

from __future__ import annotations

import filecmp
import importlib.metadata
import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from infra.artifact import (
    BUNDLED_AWS_SERVICES,
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    installed_distributions,
    pinned_requirements,
)

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

REPO_ROOT = Path(__file__).resolve().parents[2]
# Measured 2.4 MB with the models of the two services the batcher calls; 18.6 MB untrimmed.
MAX_ZIPPED_BYTES = 4_000_000


def test_both_queues_deny_requests_without_tls(env_synth: SynthResult) -> None:
    guarded: set[str] = set()
    for policy in env_synth.resources("AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                assert statement["Principal"] == {"AWS": "*"}
                assert statement["Action"] == "sqs:*"
                guarded.update(ref["Ref"] for ref in props["Queues"])
    assert guarded == set(env_synth.queue_ids)


@pytest.mark.parametrize(
    ("variant", "max_receive_count", "dlq_retention_days"),
    [("dev", 5, 14), ("prod", 5, 14), ("custom", 3, 7)],  # custom overrides both: a hard-coded value would show
)
def test_dead_letter_queue_retention_and_redrive_follow_settings(
    synth: SynthCache, variant: str, max_receive_count: int, dlq_retention_days: int
) -> None:
    result = synth(variant)
    assert result.returncode == 0, result.stderr
    main_id, dlq_id = result.queue_ids
    resources = result.template["Resources"]
    assert resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == dlq_retention_days * 24 * 3600
    assert resources[main_id]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": max_receive_count,
    }


def test_queue_retention_and_visibility_follow_settings(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    main_id, _ = env_synth.queue_ids
    queue = env_synth.template["Resources"][main_id]["Properties"]
    _, function = env_synth.only("AWS::Lambda::Function")
    assert queue["MessageRetentionPeriod"] == settings.queue_retention_seconds
    assert queue["VisibilityTimeout"] == settings.visibility_timeout_seconds
    assert queue["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"]


def test_queue_retention_differs_by_environment(synth: SynthCache) -> None:
    def retention(name: str) -> int:
        result = synth(name)
        main_id, _ = result.queue_ids
        return int(result.template["Resources"][main_id]["Properties"]["MessageRetentionPeriod"])

    assert retention("dev") == 4 * 24 * 3600
    assert retention("prod") == 14 * 24 * 3600


def test_batcher_function_runtime_handler_and_sizing(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    _, function = env_synth.only("AWS::Lambda::Function")
    props = function["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == "lambdas/batcher/handler.handler"
    assert props["Timeout"] == settings.function_timeout_seconds
    assert props["MemorySize"] == settings.function_memory_mb


def test_batcher_is_self_contained_and_built_for_its_runtime(env_synth: SynthResult) -> None:
    _, function = env_synth.only("AWS::Lambda::Function")
    props = function["Properties"]
    assert "Layers" not in props  # everything it imports is in its own package
    # The dependencies were installed for exactly this runtime and architecture.
    assert props["Runtime"] == f"python{LAMBDA_PYTHON_VERSION}"
    assert props["Architectures"] == ["arm64"]
    assert LAMBDA_PLATFORM.endswith("_aarch64")


def test_batcher_environment(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    main_id, dlq_id = env_synth.queue_ids
    _, function = env_synth.only("AWS::Lambda::Function")
    assert function["Properties"]["Environment"]["Variables"] == {
        "METRICBATCH_QUEUE_URL": {"Ref": main_id},
        "METRICBATCH_DLQ_URL": {"Ref": dlq_id},
        "POWERTOOLS_SERVICE_NAME": f"metricbatch-{settings.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "MetricBatch",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_allowed_namespaces_reach_the_batcher(synth: SynthCache) -> None:
    result = synth("custom")
    assert result.returncode == 0, result.stderr
    _, function = result.only("AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["METRICBATCH_ALLOWED_NAMESPACES"] == "Shop/,Payments/"


def test_batcher_logs_to_its_own_log_group_with_retention(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    log_group_id, log_group = env_synth.only("AWS::Logs::LogGroup")
    _, function = env_synth.only("AWS::Lambda::Function")
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    assert log_group["Properties"]["RetentionInDays"] == settings.log_retention_days


def test_removal_policy_follows_settings(synth: SynthCache) -> None:
    expected = {"dev": "Delete", "staging": "Delete", "prod": "Retain"}
    for name, policy in expected.items():
        result = synth(name)
        assert result.settings.retain_on_delete is (policy == "Retain")
        stateful = [
            *result.resources("AWS::SQS::Queue").values(),
            *result.resources("AWS::Logs::LogGroup").values(),
            *result.resources("AWS::KMS::Key").values(),
        ]
        assert len(stateful) == 4
        for resource in stateful:
            assert resource["DeletionPolicy"] == policy, (name, resource)
            assert resource["UpdateReplacePolicy"] == policy, (name, resource)


def test_event_source_mapping(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    main_id, _ = env_synth.queue_ids
    function_id, _ = env_synth.only("AWS::Lambda::Function")
    _, mapping = env_synth.only("AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [main_id, "Arn"]}
    assert props["FunctionName"] == {"Ref": function_id}
    assert props["BatchSize"] == 20
    assert props["MaximumBatchingWindowInSeconds"] == 30
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": settings.max_concurrency}


def test_concurrency_differs_by_environment_and_context_wins(synth: SynthCache) -> None:
    def concurrency(name: str) -> int:
        _, mapping = synth(name).only("AWS::Lambda::EventSourceMapping")
        return int(mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"])

    assert [concurrency(name) for name in ("dev", "staging", "prod")] == [2, 5, 20]
    # -c max_concurrency=7 beats the 3 inside -c overrides='{...}', which beats staging's 5.
    assert concurrency("custom") == 7


def test_asset_holds_the_handler_and_the_batcher_side_only(env_synth: SynthResult) -> None:
    asset = env_synth.batcher_asset
    handler_module, handler_function = env_synth.handler.rsplit(".", 1)
    assert handler_function == "handler"
    handler_file = asset / f"{handler_module}.py"
    assert filecmp.cmp(handler_file, REPO_ROOT / "lambdas/batcher/handler.py", shallow=False)
    sources = sorted(p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "metricbatch").rglob("*.py"))
    assert sources, "metricbatch has no sources?"
    batcher_side = {"aws", "cloudwatch", "batcher"}
    shared_files = {"__init__.py", "exceptions.py", "limits.py", "env.py", "wire.py", "validation.py"}
    for source in sources:
        if "__pycache__" in source.parts:
            continue
        inner = source.parts[1:]
        if inner[0] in batcher_side or (len(inner) == 1 and inner[0] in shared_files):
            assert filecmp.cmp(asset / source, REPO_ROOT / source, shallow=False), source
        else:  # producer side, CLI, emulator, worker, deploy settings: not in the Lambda
            assert not (asset / source).exists(), source


def _record_top_levels(asset: Path) -> set[str]:
    """Top-level names the bundled distributions installed, from their RECORD files."""
    names: set[str] = set()
    for record in asset.glob("*.dist-info/RECORD"):
        names.update(line.split(",", 1)[0].split("/", 1)[0] for line in record.read_text().splitlines() if line)
    return names


def test_asset_bundles_exactly_the_pinned_dependencies_the_tests_ran(env_synth: SynthResult) -> None:
    asset = env_synth.batcher_asset
    bundled = installed_distributions(asset)
    pins = pinned_requirements()
    assert bundled == pins
    assert {"boto3", "botocore", "aws-lambda-powertools"} <= set(bundled)
    # The interpreter running these tests has the same versions: the functional tests ran the deployed SDK.
    assert {name: importlib.metadata.version(name) for name in bundled} == pins
    # Nothing else at the top level: our two folders and what those distributions installed.
    top_level = {p.name for p in asset.iterdir()}
    assert top_level - {"lambdas", "metricbatch"} <= _record_top_levels(asset)


def test_asset_is_trimmed_and_small(env_synth: SynthResult) -> None:
    asset = env_synth.batcher_asset
    files = [p for p in asset.rglob("*") if p.is_file()]
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix in {".pyc", ".so"}]
    assert not (asset / "bin").exists()
    for data in (asset / "botocore" / "data", asset / "boto3" / "data"):
        assert {p.name for p in data.iterdir() if p.is_dir()} == set(BUNDLED_AWS_SERVICES)
    assert (asset / "botocore" / "data" / "endpoints.json").is_file()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(asset))
    assert len(zipped.getvalue()) < MAX_ZIPPED_BYTES

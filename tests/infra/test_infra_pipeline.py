"""Queue, dead-letter queue, batcher function, event source mapping and deployment package, per environment."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from infra.pipeline import POWERTOOLS_LAYER_VERSION

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

REPO_ROOT = Path(__file__).resolve().parents[2]
FOURTEEN_DAYS = 14 * 24 * 3600


def test_queues_use_sse_sqs(env_synth: SynthResult) -> None:
    for queue in env_synth.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


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


def test_dead_letter_queue_retention_and_redrive(env_synth: SynthResult) -> None:
    settings = env_synth.settings
    main_id, dlq_id = env_synth.queue_ids
    resources = env_synth.template["Resources"]
    assert resources[dlq_id]["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS == settings.dlq_retention_seconds
    assert resources[main_id]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": settings.max_receive_count,
    }
    assert settings.max_receive_count == 5


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


def test_batcher_uses_the_public_powertools_layer_of_the_stack_region(env_synth: SynthResult) -> None:
    _, function = env_synth.only("AWS::Lambda::Function")
    assert function["Properties"]["Layers"] == [
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:"
        f"{POWERTOOLS_LAYER_VERSION}"
    ]


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


def _asset_dir(result: SynthResult) -> Path:
    _, function = result.only("AWS::Lambda::Function")
    return result.outdir / str(function["Metadata"]["aws:asset:path"])


def test_asset_holds_the_handler_and_the_package(env_synth: SynthResult) -> None:
    asset = _asset_dir(env_synth)
    handler_module, handler_function = env_synth.only("AWS::Lambda::Function")[1]["Properties"]["Handler"].rsplit(
        ".", 1
    )
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


def test_asset_is_small_and_holds_nothing_else(env_synth: SynthResult) -> None:
    asset = _asset_dir(env_synth)
    files = [p for p in asset.rglob("*") if p.is_file()]
    top_level = {p.relative_to(asset).parts[0] for p in files}
    assert top_level == {"lambdas", "metricbatch"}
    assert not [p for p in files if "__pycache__" in p.parts or p.suffix == ".pyc"]
    assert sum(p.stat().st_size for p in files) < 1_000_000


def test_handler_imports_from_the_asset_alone(synth: SynthCache, tmp_path: Path) -> None:
    # As the Lambda runtime does it: the asset root on sys.path, the handler string turned into a module name.
    asset = _asset_dir(synth("prod"))
    _, function = synth("prod").only("AWS::Lambda::Function")
    module, attribute = function["Properties"]["Handler"].rsplit(".", 1)
    probe = (
        "import importlib, sys; "
        f"handler = getattr(importlib.import_module({module.replace('/', '.')!r}), {attribute!r}); "
        "import metricbatch; print(callable(handler), metricbatch.__file__)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(asset),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "probe",
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    is_callable, package_file = done.stdout.split()
    assert is_callable == "True"
    assert Path(package_file).is_relative_to(asset)

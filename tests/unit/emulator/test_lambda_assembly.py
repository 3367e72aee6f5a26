"""Reading the batcher from a cloud assembly, and reading its log stream: the local Lambda runner's two edges."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metricbatch.emulator.assembly import differing_sources, queue_refs, read_function, stack_template
from metricbatch.emulator.lambda_runner import LogStream
from metricbatch.exceptions import ConfigurationError

QUEUE, DLQ, FUNCTION = "QueueA1", "DeadLetterB2", "BatcherC3"


def template(environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            DLQ: {"Type": "AWS::SQS::Queue", "Properties": {}},
            QUEUE: {
                "Type": "AWS::SQS::Queue",
                "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [DLQ, "Arn"]}}},
            },
            FUNCTION: {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "lambdas/batcher/handler.handler",
                    "Runtime": "python3.13",
                    "Architectures": ["arm64"],
                    "Timeout": 45,
                    "MemorySize": 512,
                    "Environment": {"Variables": environment},
                },
                "Metadata": {"aws:asset:path": "asset.abc"},
            },
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": FUNCTION},
                    "EventSourceArn": {"Fn::GetAtt": [QUEUE, "Arn"]},
                    "BatchSize": 50,
                    "MaximumBatchingWindowInSeconds": 5,
                    "ScalingConfig": {"MaximumConcurrency": 3},
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
        }
    }


def write_assembly(root: Path, environment: dict[str, Any]) -> Path:
    (root / "asset.abc").mkdir(parents=True)
    manifest = {"artifacts": {"Stack-dev": {"type": "aws:cloudformation:stack", "properties": {}}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "Stack-dev.template.json").write_text(json.dumps(template(environment)))
    return root


def test_the_function_and_its_event_source_come_from_the_template(tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path, {"METRICBATCH_DLQ_URL": {"Ref": DLQ}, "POWERTOOLS_LOG_LEVEL": "INFO"})
    definition = read_function(assembly)
    assert definition.handler == "lambdas/batcher/handler.handler"
    assert (definition.timeout_seconds, definition.memory_mb, definition.architecture) == (45, 512, "arm64")
    assert definition.asset_dir == tmp_path / "asset.abc"
    assert definition.function_name == f"Stack-dev-{FUNCTION}"
    source = definition.event_source
    assert source is not None
    assert (source.queue_id, source.batch_size, source.window_seconds, source.max_concurrency) == (QUEUE, 50, 5.0, 3)
    _, parsed = stack_template(assembly)
    refs = queue_refs(parsed, queue_url="http://local/q", dlq_url="http://local/dlq")
    assert refs == {QUEUE: "http://local/q", DLQ: "http://local/dlq"}
    assert definition.resolved_environment(refs) == {
        "METRICBATCH_DLQ_URL": "http://local/dlq",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_a_variable_the_runner_cannot_resolve_is_one_error_naming_it(tmp_path: Path) -> None:
    assembly = write_assembly(tmp_path, {"METRICBATCH_TABLE": {"Fn::GetAtt": ["Table", "Arn"]}})
    definition = read_function(assembly)
    with pytest.raises(ConfigurationError, match="METRICBATCH_TABLE") as raised:
        definition.resolved_environment({QUEUE: "q", DLQ: "d"})
    assert "Fn::GetAtt" in str(raised.value)


def test_a_folder_that_is_not_an_assembly_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="make synth"):
        read_function(tmp_path)


def test_the_log_stream_extracts_emf_and_shows_only_warnings_and_errors() -> None:
    documents: list[dict[str, Any]] = []
    shown: list[str] = []
    logs = LogStream(emf_sink=documents.append, log_sink=shown.append)
    emf = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}, "MetricsPublished": [4.0]}
    info = {"level": "INFO", "message": "batch done"}
    warning = {"level": "WARNING", "message": "re-queued"}
    for line in (json.dumps(emf), json.dumps(info), json.dumps(warning), "START RequestId: 1 Version: $LATEST", ""):
        logs.write(line + "\n")
    assert documents == [emf]
    assert shown == [json.dumps(warning)]
    assert logs.records() == [info, warning]
    assert len(logs.lines) == 4  # the blank line is not an event


def test_an_assembly_synthesized_before_the_last_edit_is_named_stale(tmp_path: Path) -> None:
    # GIVEN a package staged from the checkout, then an edit to the checkout
    asset, checkout = tmp_path / "asset.abc", tmp_path / "checkout" / "metricbatch"
    for root in (asset / "metricbatch" / "batcher", checkout / "batcher"):
        root.mkdir(parents=True)
        (root / "handler.py").write_text("VERSION = 1\n")
    (checkout / "cli.py").write_text("not in the package\n")
    assert differing_sources(asset, checkout) == []
    (checkout / "batcher" / "handler.py").write_text("VERSION = 2\n")
    # THEN the module that differs is named
    assert differing_sources(asset, checkout) == ["metricbatch/batcher/handler.py"]

"""The batcher run as Lambda runs it: the dev stack's synthesized package, AWS's runtime interface client, the
template's Handler / environment / Timeout / MemorySize, a Runtime API per sandbox, driven by the poller.

Each part of Lambda's lifecycle is checked from outside, as a user would see it: sums read back from the local
CloudWatch, the queue and the DLQ, the sandbox processes, and the function's log stream.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import CLI, child_env

from metricbatch.batcher.self_metrics import DUPLICATE_MESSAGES_SKIPPED, METRICS_PUBLISHED, SERVICE_DIMENSION
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.lambda_runner import iter_report_lines
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.exceptions import FunctionInitError

DEV_SERVICE = "metricbatch-dev"  # POWERTOOLS_SERVICE_NAME in the dev template
SELF_NAMESPACE = "MetricBatch"  # POWERTOOLS_METRICS_NAMESPACE in the dev template


def metric(namespace: str, value: float, name: str = "Orders") -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "value": value, "unit": "Count"}


def envelope(namespace: str, *values: float) -> str:
    """One SQS message (wire format v1) with these values of ``namespace``/Orders."""
    return json.dumps({"v": 1, "metrics": [metric(namespace, v) for v in values]})


def send(pipeline: LocalPipeline, *bodies: str) -> None:
    for body in bodies:
        pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=body)


def receive_one(pipeline: LocalPipeline) -> dict[str, Any]:
    messages: list[dict[str, Any]] = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    )["Messages"]
    return messages[0]


def process_state(pid: int) -> str:
    """The kernel's state letter of a process: T when stopped (frozen), S or R when running."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_until_settled(pipeline: LocalPipeline, timeout: float) -> None:
    """Poll (background pollers running) until nothing is on the queue or in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pipeline.queue_depth() > 0:
        time.sleep(0.2)
    assert pipeline.queue_depth() == 0, pipeline.diagnostics()


@pytest.fixture
def shown() -> list[str]:
    return []


@pytest.fixture
def pipeline(deployed_assembly: Path, shown: list[str]) -> Iterator[LocalPipeline]:
    with LocalPipeline(
        queue_name=f"runner-{uuid.uuid4().hex[:8]}", assembly=deployed_assembly, window_seconds=0, log_sink=shown.append
    ) as started:
        yield started


def test_one_sandbox_cold_starts_is_frozen_between_invocations_and_reused(
    pipeline: LocalPipeline, deployed_assembly: Path
) -> None:
    function, definition = pipeline.function, pipeline.function_definition
    assert function is not None and definition is not None
    # GIVEN the dev stack's assembly: its function's settings, not the source tree's defaults, are what runs
    assert definition.asset_dir.parent == deployed_assembly
    assert function.spec.task_root == definition.asset_dir
    assert function.spec.handler == "lambdas/batcher/handler.handler"
    assert function.spec.timeout_seconds == definition.timeout_seconds == 60
    assert function.spec.memory_mb == 256
    assert pipeline.poller_config.batch_size == 20  # the event source mapping's BatchSize
    assert pipeline.poller_config.concurrency == 2  # its ScalingConfig.MaximumConcurrency
    # the queue refs of Environment.Variables point at this pipeline's queues
    assert function.spec.environment["METRICBATCH_QUEUE_URL"] == pipeline.queue_url
    assert function.spec.environment["METRICBATCH_DLQ_URL"] == pipeline.dlq_url
    namespace = f"Runner/{uuid.uuid4().hex[:8]}"
    # GIVEN a batch on the queue WHEN the poller hands it to the function
    send(pipeline, envelope(namespace, 1, 2, 3))
    pipeline.drain(timeout=60)
    # THEN one sandbox started (a cold start), and it is frozen now that its runtime waits for the next event
    (sandbox,) = function.sandboxes
    pid = sandbox.pid
    assert pid is not None and function.stats.pids == [pid]
    assert process_state(pid) == "T"
    # WHEN a second batch comes (plus an invalid metric, which the template's DLQ variable sends to the local DLQ)
    send(pipeline, json.dumps({"v": 1, "metrics": [metric(namespace, 4), metric(namespace, 1, name="x" * 300)]}))
    pipeline.drain(timeout=60)
    # THEN the same process served it: thawed, reused, frozen again; no second cold start
    assert function.stats.cold_starts == 1 and function.stats.pids == [pid]
    assert function.stats.invocations == pipeline.poller.stats.invocations == 2
    assert function.stats.freezes == 2 and process_state(pid) == "T"
    assert pipeline.read_series(namespace, "Orders", unit="Count") == (10.0, 4.0)
    assert pipeline.dlq_depth() == 1
    # AND the log stream reads as Lambda's: Powertools' JSON records (cold start, then warm; the template's
    # service name), Lambda's REPORT lines (an Init Duration on the first only)
    records = [r for r in function.logs.records() if r.get("message") == "batch done"]
    assert [r["cold_start"] for r in records] == [True, False]
    assert {r["service"] for r in records} == {DEV_SERVICE}
    assert {r["function_name"] for r in records} == {function.spec.name}
    reports = list(iter_report_lines(list(function.logs.lines)))
    assert ["Init Duration" in r for r in reports] == [True, False]
    assert all(r["Memory Size"] == "256 MB" for r in reports)
    # AND its EMF self-metrics became metrics in the local CloudWatch (what the savings dashboard is built on)
    assert function.logs.emf_documents == 2
    published = pipeline.read_series(SELF_NAMESPACE, METRICS_PUBLISHED, {SERVICE_DIMENSION: DEV_SERVICE})
    assert published == (4.0, 2.0)
    calls = pipeline.aws.ledger.snapshot()["calls"]
    assert calls["cloudwatch:PutMetricData"] == 2  # the EMF extraction is not a billed PutMetricData call


def test_the_duplicate_memory_lives_in_the_sandbox(pipeline: LocalPipeline) -> None:
    function = pipeline.function
    assert function is not None
    namespace = f"Runner/{uuid.uuid4().hex[:8]}"
    send(pipeline, envelope(namespace, 5))
    message = receive_one(pipeline)
    # GIVEN a message one sandbox published
    pipeline.poller.invoke([message])
    # WHEN the same message is delivered to the same (warm) sandbox again
    pipeline.poller.invoke([message])
    # THEN it is skipped, not published twice
    assert pipeline.read_series(namespace, "Orders", unit="Count") == (5.0, 1.0)
    skipped = pipeline.read_series(SELF_NAMESPACE, DUPLICATE_MESSAGES_SKIPPED, {SERVICE_DIMENSION: DEV_SERVICE})
    assert skipped[0] >= 1.0
    # WHEN the sandbox is gone (Lambda recycles sandboxes) and the message comes once more
    function.sandboxes[0].stop()
    pipeline.poller.invoke([message])
    # THEN a new sandbox, with no memory of it, publishes it again: the at-least-once edge the README states
    assert function.stats.cold_starts == 2
    assert pipeline.read_series(namespace, "Orders", unit="Count") == (10.0, 2.0)


def test_an_invocation_past_its_deadline_kills_the_sandbox_and_its_batch_comes_back(
    deployed_assembly: Path, shown: list[str]
) -> None:
    # GIVEN a 3 s function and a queue whose messages come back 2 s after a failed receive
    with LocalPipeline(
        queue_name=f"timeout-{uuid.uuid4().hex[:8]}",
        assembly=deployed_assembly,
        window_seconds=0,
        function_timeout_seconds=3,
        log_sink=shown.append,
    ) as pipeline:
        function = pipeline.function
        assert function is not None
        pipeline.sqs.set_queue_attributes(QueueUrl=pipeline.queue_url, Attributes={"VisibilityTimeout": "2"})
        first, second = f"Runner/{uuid.uuid4().hex[:8]}", f"Runner/{uuid.uuid4().hex[:8]}"
        # one message, two namespaces: two PutMetricData calls; CloudWatch answers the first, the second stalls
        send(pipeline, json.dumps({"v": 1, "metrics": [metric(first, 1), metric(first, 2), metric(second, 3)]}))
        pipeline.aws.faults.add(
            Fault("cloudwatch:PutMetricData", kind="unavailable", delay_seconds=8, skip=1, remaining=1)
        )
        # WHEN the event source mapping runs
        pipeline.start_polling()
        wait_until_settled(pipeline, timeout=45)
        pipeline.finish_polling(timeout=10)
        # THEN the sandbox was killed at its deadline and the next delivery started a new one
        assert function.stats.timeouts == 1
        assert function.stats.cold_starts == 2 and len(set(function.stats.pids)) == 2
        assert pipeline.poller.stats.batch_failures == 1
        assert any("Task timed out after 3.00 seconds" in line for line in function.logs.lines)
        assert any("Task timed out" in line for line in shown)
        # AND the batch came back after the visibility timeout and was published; what the killed sandbox had
        # published before its deadline is published twice: here the first of the two calls (measured)
        counts = sorted(
            (
                pipeline.read_series(first, "Orders", unit="Count")[1] / 2,
                pipeline.read_series(second, "Orders", unit="Count")[1] / 1,
            )
        )
        assert counts == [1.0, 2.0]
        assert pipeline.dlq_depth() == 0


def test_maximum_concurrency_runs_that_many_sandboxes(deployed_assembly: Path) -> None:
    # GIVEN the dev template's MaximumConcurrency (2) and a CloudWatch slow enough that batches overlap
    with LocalPipeline(
        queue_name=f"conc-{uuid.uuid4().hex[:8]}", assembly=deployed_assembly, window_seconds=0, batch_size=1
    ) as pipeline:
        function = pipeline.function
        assert function is not None and pipeline.poller_config.concurrency == 2
        namespace = f"Runner/{uuid.uuid4().hex[:8]}"
        pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", kind="delay", delay_seconds=0.4))
        send(pipeline, *(envelope(namespace, i) for i in range(1, 5)))
        # WHEN the event source mapping drains the queue
        pipeline.start_polling()
        wait_until_settled(pipeline, timeout=60)
        pipeline.finish_polling(timeout=10)
        # THEN two sandboxes ran at once, never more, and every metric arrived once
        assert function.stats.cold_starts == 2 and len(set(function.stats.pids)) == 2
        assert function.stats.peak_concurrency == 2
        assert pipeline.read_series(namespace, "Orders", unit="Count") == (10.0, 4.0)


def assembly_variant(
    source: Path, target: Path, *, handler: str | None = None, drop: str | None = None, forget: str | None = None
) -> Path:
    """A copy of a cloud assembly with another Handler string, a module removed from the package, or an environment
    variable the template forgets."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
        elif item.name.startswith("asset.") and drop is not None:  # the package's entries, linked, less one
            (target / item.name).mkdir()
            for entry in item.iterdir():
                if entry.name != drop:
                    (target / item.name / entry.name).symlink_to(entry)
        elif item.name.startswith("asset."):
            (target / item.name).symlink_to(item)
    (template_file,) = target.glob("*.template.json")
    template = json.loads(template_file.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Handler"] = handler or resource["Properties"]["Handler"]
            resource["Properties"]["Environment"]["Variables"].pop(forget, None)
    template_file.write_text(json.dumps(template))
    return target


def test_a_variable_the_template_forgets_is_missing_in_the_function(deployed_assembly: Path, tmp_path: Path) -> None:
    # GIVEN a template without POWERTOOLS_SERVICE_NAME, run from a process that has one (the in-process batcher's)
    variant = assembly_variant(deployed_assembly, tmp_path / "variant", forget="POWERTOOLS_SERVICE_NAME")
    with LocalPipeline(queue_name=f"env-{uuid.uuid4().hex[:8]}", assembly=variant, window_seconds=0) as pipeline:
        assert os.environ["POWERTOOLS_SERVICE_NAME"] == "metricbatch-local"
        function = pipeline.function
        assert function is not None
        namespace = f"Runner/{uuid.uuid4().hex[:8]}"
        # WHEN a batch is handled
        send(pipeline, envelope(namespace, 1))
        pipeline.drain(timeout=60)
        # THEN the function saw only the template's environment: no service name, so Powertools' default
        (record,) = [r for r in function.logs.records() if r.get("message") == "batch done"]
        assert record["service"] == "service_undefined"
        assert pipeline.read_series(namespace, "Orders", unit="Count") == (1.0, 1.0)


@pytest.mark.parametrize(
    ("handler", "drop", "error_type", "detail"),
    [
        ("lambdas/batcher/handler.no_such_function", None, "Runtime.HandlerNotFound", "no_such_function"),
        ("lambdas/batcher/missing.handler", None, "Runtime.ImportModuleError", "lambdas/batcher/missing"),
        # the developer's virtualenv has Powertools; the package must not need it from there
        (None, "aws_lambda_powertools", "Runtime.ImportModuleError", "No module named 'aws_lambda_powertools'"),
    ],
    ids=["bad-handler-string", "missing-handler-module", "module-missing-from-package"],
)
def test_an_init_error_names_the_handler_and_fails_the_batch(
    deployed_assembly: Path, tmp_path: Path, handler: str | None, drop: str | None, error_type: str, detail: str
) -> None:
    # GIVEN an assembly whose function cannot start
    broken = assembly_variant(deployed_assembly, tmp_path / "broken", handler=handler, drop=drop)
    expected_handler = handler or "lambdas/batcher/handler.handler"
    shown: list[str] = []
    with LocalPipeline(
        queue_name=f"init-{uuid.uuid4().hex[:8]}", assembly=broken, window_seconds=0, log_sink=shown.append
    ) as pipeline:
        function = pipeline.function
        assert function is not None
        # WHEN a sandbox starts THEN the runtime's /runtime/init/error comes back as one error naming the handler
        with pytest.raises(FunctionInitError) as raised:
            pipeline.warm_batcher()
        message = str(raised.value)
        assert f"Handler {expected_handler!r}" in message and error_type in message and detail in message
        assert raised.value.error_type == error_type
        assert any(error_type in line for line in shown)  # the runtime's own [ERROR] line, shown
        # AND a batch handed to it fails whole and stays on the queue (it comes back after the visibility timeout)
        send(pipeline, envelope("Runner/Init", 1))
        assert pipeline.poller.poll_once(idle_timeout=2)
        assert pipeline.poller.stats.batch_failures == 1 and pipeline.poller.stats.deleted == 0
        assert pipeline.queue_depth() == 1
        assert function.stats.init_errors == 2


def test_demo_with_a_package_that_cannot_start_is_one_line_naming_the_handler(
    deployed_assembly: Path, tmp_path: Path
) -> None:
    broken = assembly_variant(deployed_assembly, tmp_path / "broken", drop="aws_lambda_powertools")
    result = subprocess.run(
        [*CLI, "demo", "--metrics", "10", "--assembly", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({}),
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("metricbatch demo:")]
    assert len(errors) == 1, result.stderr[-2000:]
    assert "Handler 'lambdas/batcher/handler.handler'" in errors[0]
    assert "No module named 'aws_lambda_powertools'" in errors[0]
    assert "metricbatch/emulator" not in result.stderr  # no traceback of ours; the runtime's own log line is shown

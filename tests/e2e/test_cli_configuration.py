"""A wrong or missing setting, through the command line in a child process: exit code 2 and one line naming it.

Also the README's local walkthrough (`metricbatch local`, then `send` and `dlq redrive` with just its exports) and
the worker's dead-letter queue, which `poll` requires one way or another.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import CLI, child_env, read_local_exports, start_local
from jsonschema import Draft7Validator

from metricbatch.emulator.local_pipeline import LOCAL_NAMESPACE, LocalPipeline
from metricbatch.wire import ATTR_RULE


def _run(argv: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _one_line_error(result: subprocess.CompletedProcess[str], *named: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def pipeline(deployed_assembly: Path) -> Iterator[LocalPipeline]:
    with LocalPipeline(queue_name=f"cfg-{uuid.uuid4().hex[:8]}", assembly=deployed_assembly) as p:
        yield p


@pytest.fixture
def regionless(tmp_path: Path) -> dict[str, str]:
    """A machine with credentials and a profile, but no region anywhere (and no instance metadata to ask)."""
    (tmp_path / "config").write_text("[default]\noutput = json\n")
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    return child_env(
        {
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": str(tmp_path / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: the region is missing first
        }
    )


# -- send: the flag and the variable ---------------------------------------------------------------------------------
def test_send_without_a_namespace_names_the_flag_and_the_variable(pipeline: LocalPipeline) -> None:
    env = {k: v for k, v in pipeline.env().items() if k != "METRICBATCH_NAMESPACE"}
    result = _run(["send", "Hits", "1"], child_env(env))
    line = _one_line_error(result, "--namespace", "METRICBATCH_NAMESPACE")
    assert "namespace=" not in line
    assert pipeline.queue_depth() == 0


def test_send_without_a_queue_names_the_flag_and_the_variable(pipeline: LocalPipeline) -> None:
    env = {k: v for k, v in pipeline.env().items() if k != "METRICBATCH_QUEUE_URL"}
    line = _one_line_error(_run(["send", "Hits", "1"], child_env(env)), "--queue-url", "METRICBATCH_QUEUE_URL")
    assert "queue_url=" not in line


def test_send_to_a_queue_that_does_not_exist_exits_2_with_one_line_and_no_fallback(pipeline: LocalPipeline) -> None:
    # GIVEN the local stack's settings but a queue URL that names no queue
    missing = f"{pipeline.aws.endpoint_url}/123456789012/nope"
    env = {k: v for k, v in pipeline.env().items() if k != "METRICBATCH_QUEUE_URL"}
    result = _run(["send", "Hits", "1", "--queue-url", missing], child_env(env))
    # THEN one line names the queue and the setting, the exit code says configuration, nothing was published
    line = _one_line_error(result, missing, "METRICBATCH_QUEUE_URL", "NonExistentQueue", "not sent")
    assert "fallback" not in line and "published" not in result.stdout
    calls = pipeline.aws.ledger.snapshot()["calls"]
    assert calls.get("cloudwatch:PutMetricData", 0) == 0
    assert calls.get("sqs:SendMessageBatch") == 1


def test_send_with_a_mode_that_is_none_names_the_variable_and_the_flag() -> None:
    env = child_env({"METRICBATCH_NAMESPACE": "Shop", "METRICBATCH_MODE": "stdout"})
    _one_line_error(_run(["send", "Hits", "1"], env), "METRICBATCH_MODE='stdout'", "--mode", "sqs, emf, memory, off")


def test_send_mode_emf_prints_one_emf_line_and_needs_no_queue() -> None:
    result = _run(
        ["send", "Hits", "2", "--unit", "Count", "--mode", "emf", "--dimension", "Host=a"],
        child_env({"METRICBATCH_NAMESPACE": "Shop"}),
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    document = json.loads(line)
    schema = json.loads((Path(__file__).parents[1] / "vectors" / "emf" / "schema.json").read_text())
    assert [e.message for e in Draft7Validator(schema).iter_errors(document)] == []  # the official EMF schema
    assert (document["Hits"], document["Host"]) == (2.0, "a")
    assert document["_aws"]["CloudWatchMetrics"] == [
        {"Namespace": "Shop", "Dimensions": [["Host"]], "Metrics": [{"Name": "Hits", "Unit": "Count"}]}
    ]
    assert result.stderr.strip() == "written to stdout as an EMF line: Hits=2 Count"


# -- the region ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [["savings", "--env", "local"], ["poll", "--queue-url", "http://127.0.0.1:9/123456789012/q"],
     ["dlq", "inspect", "--queue-url", "http://127.0.0.1:9/123456789012/q-dlq"]],
)  # fmt: skip
def test_no_region_anywhere_is_one_configuration_error(regionless: dict[str, str], argv: list[str]) -> None:
    _one_line_error(_run(argv, regionless), "--region", "AWS_REGION", "AWS_DEFAULT_REGION")


def test_send_without_a_region_is_one_line_naming_both_variables(
    pipeline: LocalPipeline, regionless: dict[str, str]
) -> None:
    env = {**regionless, "METRICBATCH_QUEUE_URL": pipeline.queue_url, "METRICBATCH_NAMESPACE": "Shop"}
    _one_line_error(_run(["send", "Hits", "1"], env), "AWS_REGION", "AWS_DEFAULT_REGION")
    assert pipeline.aws.ledger.snapshot()["calls"].get("sqs:SendMessageBatch", 0) == 0


def test_savings_reads_the_region_from_aws_region_alone(pipeline: LocalPipeline, regionless: dict[str, str]) -> None:
    # GIVEN only AWS_REGION (botocore itself reads AWS_DEFAULT_REGION and the profile, not AWS_REGION)
    env = {**regionless, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": pipeline.aws.endpoint_url}
    # WHEN reading the local pipeline's savings THEN it works
    result = _run(["savings", "--env", "local", "--since", "1h", "--json"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "last 1 hour" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1])["period_seconds"] == 3600


# -- poll: a dead-letter queue, one way or another -------------------------------------------------------------------
def test_poll_refuses_to_start_without_a_dead_letter_queue(pipeline: LocalPipeline) -> None:
    # GIVEN a queue without a redrive policy, and neither --dlq-url nor METRICBATCH_DLQ_URL
    bare = pipeline.sqs.create_queue(QueueName=f"bare-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    result = _run(["poll", "--queue-url", bare], child_env(pipeline.env()), timeout=30)
    _one_line_error(result, "--dlq-url", "METRICBATCH_DLQ_URL", "redrive policy")


def test_poll_sets_invalid_metrics_aside_in_the_queues_redrive_target(pipeline: LocalPipeline) -> None:
    # GIVEN a worker started with only AWS_REGION for the region and no METRICBATCH_DLQ_URL: the queue's redrive
    # policy names its DLQ
    env = {k: v for k, v in pipeline.env().items() if k != "AWS_DEFAULT_REGION"}
    worker = subprocess.Popen(
        [*CLI, "poll", "--queue-url", pipeline.queue_url, "--window", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(env),
    )
    namespace = f"E2E/Poll{uuid.uuid4().hex[:8]}"
    try:
        # WHEN a message holds one valid and one invalid metric
        body = {"v": 1, "metrics": [{"namespace": namespace, "name": "Good", "value": 4.0},
                                    {"namespace": namespace, "name": "Bad", "value": "12"}]}  # fmt: skip
        pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps(body))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            pipeline.read_series(namespace, "Good")[1] == 0 or not pipeline.dlq_depth()
        ):
            time.sleep(0.3)
        # THEN the valid metric is published once and the invalid one waits in the DLQ with its rule
        assert pipeline.read_series(namespace, "Good") == (4.0, 1.0)
        set_aside = pipeline.sqs.receive_message(QueueUrl=pipeline.dlq_url, MessageAttributeNames=["All"])["Messages"]
        assert [m["MessageAttributes"][ATTR_RULE]["StringValue"] for m in set_aside] == ["value.type"]
        assert pipeline.queue_depth() == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr[-2000:]
    assert f"DLQ {pipeline.dlq_url}" in stderr
    assert "Traceback" not in stderr


# -- the README's local walkthrough ----------------------------------------------------------------------------------
def test_local_then_send_and_redrive_with_just_its_exports(deployed_assembly: Path) -> None:
    # GIVEN `metricbatch local` running, and a shell that evaluated its export lines
    local = start_local("--window", "0.2", "--interval", "0.5", assembly=deployed_assembly)
    try:
        exports, dlq_url = read_local_exports(local)
        assert exports["METRICBATCH_NAMESPACE"] == LOCAL_NAMESPACE
        assert exports["METRICBATCH_MODE"] == "sqs"  # the setting is shown, not implied
        shell = child_env(exports)
        # WHEN the README's next step runs: a metric with nothing but a name and a value
        sent = _run(["send", "Hits", "1", "--unit", "Count"], shell)
        assert sent.returncode == 0, sent.stderr
        assert "queued" in sent.stdout
        # AND the DLQ is redriven against the local stack (which has no StartMessageMoveTask)
        redriven = _run(["dlq", "redrive", "--queue-url", dlq_url, "--to", exports["METRICBATCH_QUEUE_URL"]], shell)
        assert redriven.returncode == 0, redriven.stderr
        assert "moving messages one by one" in redriven.stderr
        assert "Traceback" not in redriven.stderr
        # THEN the metric reaches the local CloudWatch under the exported namespace
        script = (
            "import boto3, time, datetime as d\n"
            "cw = boto3.client('cloudwatch')\n"
            "now = d.datetime.now(d.UTC)\n"
            "for _ in range(60):\n"
            f"    p = cw.get_metric_statistics(Namespace={LOCAL_NAMESPACE!r}, MetricName='Hits', Period=86400,\n"
            "        StartTime=now - d.timedelta(hours=1), EndTime=now + d.timedelta(hours=1),\n"
            "        Statistics=['Sum'])['Datapoints']\n"
            "    if p: break\n"
            "    time.sleep(0.5)\n"
            "print(sum(x['Sum'] for x in p))\n"
        )
        read = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=shell, check=False
        )
        assert read.stdout.strip() == "1.0", read.stderr
    finally:
        local.send_signal(signal.SIGINT)
        _, stderr = local.communicate(timeout=30)
    # AND the terminal of `metricbatch local` shows no traceback from the unsupported move task
    assert local.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "Error on request" not in stderr

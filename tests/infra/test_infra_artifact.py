"""The deployment package as synthesized, run on its own: no site-packages, no checkout, real SQS events.

The batcher asset of the prod stack is copied out of the cloud assembly and run by ``artifact_probe.py`` in a fresh
interpreter whose ``sys.path`` is that folder and the standard library only, against the embedded AWS (strict
CloudWatch). What happened is read from outside: CloudWatch, the queue and the DLQ.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest

from metricbatch.emulator.embedded import EmbeddedAws
from metricbatch.emulator.gateway import Fault
from metricbatch.worker.poller import build_record

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

PROBE = Path(__file__).with_name("artifact_probe.py")
PROBE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Queues:
    queue_url: str
    queue_arn: str
    dlq_url: str


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws(region="eu-west-1") as embedded:
        yield embedded
        embedded.reset()


@pytest.fixture
def queues(aws: EmbeddedAws) -> Iterator[Queues]:
    sqs = aws.client("sqs")
    name = f"artifact-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield Queues(queue_url, arn, dlq_url)
    aws.faults.clear()


@pytest.fixture
def package(synth: SynthCache, tmp_path: Path) -> tuple[Path, str]:
    """A fresh copy of the prod stack's batcher asset (no bytecode), and the function's Handler string."""
    result: SynthResult = synth("prod")
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "package"
    shutil.copytree(result.batcher_asset, copied)
    return copied, result.handler


def run_package(
    package: tuple[Path, str], aws: EmbeddedAws, queues: Queues, events: list[tuple[dict[str, Any], float]], **env: str
) -> dict[str, Any]:
    folder, handler = package
    invocations = folder.parent / f"invocations-{uuid.uuid4().hex[:6]}.json"
    invocations.write_text(json.dumps([{"event": e, "timeout_seconds": t} for e, t in events]))
    result_file = invocations.with_suffix(".result.json")
    environment = {
        **aws.env(),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "METRICBATCH_QUEUE_URL": queues.queue_url,
        "METRICBATCH_DLQ_URL": queues.dlq_url,
        "POWERTOOLS_SERVICE_NAME": "metricbatch-probe",
        "POWERTOOLS_METRICS_NAMESPACE": "MetricBatchProbe",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(PROBE), str(folder), handler, str(invocations), str(result_file)],
        cwd=folder.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        check=False,
    )
    assert result_file.exists(), done.stderr
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["returncode"] = done.returncode
    return result


def sqs_event(aws: EmbeddedAws, queues: Queues, bodies: list[str]) -> dict[str, Any]:
    """Send the bodies, receive them back and build the event Lambda's SQS event source would deliver."""
    sqs = aws.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(received) < len(bodies) and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queues.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        received += response.get("Messages", [])
    assert len(received) == len(bodies)
    return {"Records": [build_record(m, queue_arn=queues.queue_arn, region=aws.region) for m in received]}


def envelope(*metrics: dict[str, Any]) -> str:
    return json.dumps({"v": 1, "metrics": list(metrics)})


def visible(aws: EmbeddedAws, queue_url: str) -> list[dict[str, Any]]:
    response = aws.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    return list(response.get("Messages", []))


def statistics(aws: EmbeddedAws, namespace: str, name: str, dimensions: dict[str, str]) -> tuple[float, float]:
    now = datetime.now(UTC)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)


def published_metric_names(aws: EmbeddedAws, namespace: str) -> set[str]:
    return {m["MetricName"] for m in aws.client("cloudwatch").list_metrics(Namespace=namespace)["Metrics"]}


def assert_ran_from_the_package_alone(result: dict[str, Any], folder: Path) -> None:
    assert "import_error" not in result, result["import_error"]["trace"]
    assert result["sys_path_outside_stdlib"] == []  # no site-packages, no checkout, no script folder
    assert result["modules_from_elsewhere"] == []
    assert Path(result["boto3_file"]).resolve().is_relative_to(folder.resolve())


def test_the_package_alone_publishes_and_sets_aside(
    package: tuple[Path, str], aws: EmbeddedAws, queues: Queues
) -> None:
    namespace = f"Artifact/{uuid.uuid4().hex[:8]}"
    route = {"Route": "/cart"}
    event = sqs_event(
        aws,
        queues,
        [
            envelope(
                {"namespace": namespace, "name": "Requests", "value": 3, "unit": "Count", "dimensions": route},
                {"namespace": namespace, "name": "Requests", "value": 4, "unit": "Count", "dimensions": route},
            ),
            envelope({"namespace": namespace, "name": "Distance", "value": 1, "unit": "Furlongs"}),
        ],
    )

    result = run_package(package, aws, queues, [(event, 30.0)])

    assert_ran_from_the_package_alone(result, package[0])
    assert result["errors"] == []
    assert result["responses"] == [{"batchItemFailures": []}]
    assert statistics(aws, namespace, "Requests", route) == (7.0, 2.0)
    assert published_metric_names(aws, namespace) == {"Requests"}  # the invalid metric never reached CloudWatch
    (set_aside,) = visible(aws, queues.dlq_url)
    assert set_aside["MessageAttributes"]["metricbatch.rule"]["StringValue"] == "unit.unknown"
    assert "Furlongs" in set_aside["Body"]


def test_the_package_alone_requeues_what_cloudwatch_throttled(
    package: tuple[Path, str], aws: EmbeddedAws, queues: Queues
) -> None:
    namespace = f"Artifact/{uuid.uuid4().hex[:8]}"
    event = sqs_event(aws, queues, [envelope({"namespace": namespace, "name": "Orders", "value": 5})])
    aws.faults.add(Fault("cloudwatch:PutMetricData", kind="throttle"))
    injected_before = aws.faults.injected["cloudwatch:PutMetricData"]

    result = run_package(package, aws, queues, [(event, 4.0)])  # a short deadline: retries end, re-queue follows

    assert_ran_from_the_package_alone(result, package[0])
    assert result["errors"] == []
    assert result["responses"] == [{"batchItemFailures": []}]  # settled: its data went back to the queue
    assert aws.faults.injected["cloudwatch:PutMetricData"] > injected_before
    assert published_metric_names(aws, namespace) == set()
    (requeued,) = visible(aws, queues.queue_url)
    body = json.loads(requeued["Body"])
    assert body["attempt"] == 1
    assert [(m["namespace"], m["name"]) for m in body["metrics"]] == [(namespace, "Orders")]
    assert visible(aws, queues.dlq_url) == []


@pytest.mark.parametrize("missing", ["jmespath", "metricbatch/validation.py"])
def test_a_module_missing_from_the_package_fails_the_run(
    package: tuple[Path, str], aws: EmbeddedAws, queues: Queues, missing: str
) -> None:
    # The venv has every module; the run must not find it there. Remove one from the copy and the handler fails.
    target = package[0] / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    event = sqs_event(aws, queues, [envelope({"namespace": "Artifact/Missing", "name": "Orders", "value": 1})])

    result = run_package(package, aws, queues, [(event, 30.0)])

    assert result["returncode"] == 1
    assert result["import_error"]["type"] == "ModuleNotFoundError"
    module = missing.removesuffix(".py").replace("/", ".")
    assert f"No module named '{module}'" in result["import_error"]["message"]
    assert published_metric_names(aws, "Artifact/Missing") == set()


def test_the_package_refuses_a_botocore_that_would_send_the_query_protocol(
    package: tuple[Path, str], aws: EmbeddedAws, queues: Queues, tmp_path: Path
) -> None:
    # AWS_DATA_PATH puts a CloudWatch model first whose only protocol is query, as an older botocore's would be.
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model("cloudwatch", "service-2"))
    model["metadata"].update(protocols=["query"], protocol="query")
    models = tmp_path / "models"
    (models / "cloudwatch" / model["metadata"]["apiVersion"]).mkdir(parents=True)
    (models / "cloudwatch" / model["metadata"]["apiVersion"] / "service-2.json").write_text(json.dumps(model))
    namespace = f"Artifact/{uuid.uuid4().hex[:8]}"
    event = sqs_event(aws, queues, [envelope({"namespace": namespace, "name": "Orders", "value": 1})])

    result = run_package(package, aws, queues, [(event, 30.0)], AWS_DATA_PATH=str(models))

    assert_ran_from_the_package_alone(result, package[0])
    assert result["responses"] == [None]  # the invocation failed: Lambda retries, then the redrive policy
    (error,) = result["errors"]
    assert error["type"] == "ConfigurationError"
    assert "'query' protocol" in error["message"]
    assert "[rule: cloudwatch.protocol]" in error["message"]
    assert published_metric_names(aws, namespace) == set()

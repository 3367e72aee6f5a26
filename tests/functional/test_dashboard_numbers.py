"""Issue 26: the synthesized savings dashboard, rendered from the local CloudWatch, shows the numbers that
``metricbatch savings`` computes for the same window, and those numbers are what really happened.

One module pipeline runs a known workload through the real handler: a CloudWatch outage (every PutMetricData call
of a stretch fails, so the batcher retries and re-queues), a message delivered twice in one batch, and one
redelivered to another sandbox (the documented at-least-once edge: published twice), and a message with an invalid
metric set aside to the DLQ. AWS/SQS and AWS/Lambda metrics are the emulator's (counted from the requests served,
and per invocation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from functional_support import unique_namespace

from metricbatch.batcher import handler as batcher_lambda
from metricbatch.cli import main
from metricbatch.cli.savings import SavingsReport, collect
from metricbatch.dashboard import RenderedDashboard, render_dashboard
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline

PIPELINE_OPTIONS = {"batch_size": 20}
REPO_ROOT = Path(__file__).resolve().parents[2]
METRICS = 600
WINDOW_SECONDS = 3 * 3600
TOTALS, DOLLARS = "Over the selected time range", "Dollars over the selected time range"
TREND, DOLLAR_TREND = "Metrics in, PutMetricData calls out (per hour)", "Dollars per hour: saved, pipeline cost, net"


@dataclass
class Run:
    dashboard: RenderedDashboard
    savings: SavingsReport
    successful_put_calls: int
    outage_faults: int
    requeued: float
    duplicates_skipped: float
    set_aside: float
    dlq_sent: float


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack as `cdk synth` produces it (the dashboard is read from the template, never rebuilt)."""
    out = tmp_path_factory.mktemp("assembly") / "dev"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "AWS_REGION": "eu-west-1", "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}  # fmt: skip
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    done = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", "env=dev", "-o", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _wire_message(namespace: str, value: float) -> str:
    metric = {"namespace": namespace, "name": "Orders", "value": value, "unit": "Count", "timestamp": time.time()}
    return json.dumps({"v": 1, "metrics": [metric]})


def _self_metric(pipeline: LocalPipeline, name: str) -> float:
    return pipeline.read_series("MetricBatch", name, {"service": LOCAL_SERVICE_NAME})[0]


@pytest.fixture(scope="module")
def run(pipeline: LocalPipeline, assembly: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    pipeline.aws.ledger.reset()
    namespace = unique_namespace("Dashboard")
    # GIVEN a service sending METRICS metrics over 40 series, one wire metric per message (many invocations)
    producer = pipeline.producer(max_message_bytes=256, handle_sigterm=False)
    for i in range(METRICS):
        producer.send_metric("Latency", float(i % 9), unit="Milliseconds", namespace=namespace,
                             dimensions={"Route": f"r{i % 40}"})  # fmt: skip
    assert producer.flush(timeout=30)
    producer.close()
    # AND a CloudWatch outage: the next 12 PutMetricData calls fail (503), more than one invocation's retries
    outage = pipeline.aws.faults.add(Fault("cloudwatch:PutMetricData", "unavailable", remaining=12))
    pipeline.poller.drain(timeout=90, window_seconds=0.5)
    assert outage.remaining == 0
    # AND a message SQS delivers twice in one batch (skipped once), and one redelivered to another sandbox
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=_wire_message(namespace, 5))
    receive = {"QueueUrl": pipeline.queue_url, "MaxNumberOfMessages": 1, "MessageSystemAttributeNames": ["All"]}
    first = pipeline.sqs.receive_message(**receive, VisibilityTimeout=0)["Messages"][0]
    second = pipeline.sqs.receive_message(**receive)["Messages"][0]
    assert first["MessageId"] == second["MessageId"]
    assert pipeline.poller.invoke([first, second]) == {"batchItemFailures": []}
    original = batcher_lambda.sandbox()
    batcher_lambda.new_sandbox()
    try:
        assert pipeline.poller.invoke([first]) == {"batchItemFailures": []}
    finally:
        batcher_lambda.new_sandbox(original)
    # AND a message with one invalid metric: the batcher sends it to the DLQ (a billed SQS request) and publishes
    # the valid one
    bad = {"namespace": namespace, "name": "Orders", "value": 1, "unit": "Parsecs", "timestamp": time.time()}
    good = {"namespace": namespace, "name": "Orders", "value": 2, "unit": "Count", "timestamp": time.time()}
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps({"v": 1, "metrics": [bad, good]}))
    pipeline.poller.drain(timeout=30, window_seconds=0.2)
    # AND the AWS/SQS message counts the gateway saw, put as AWS publishes them
    assert pipeline.publish_service_metrics() > 0
    names = pipeline.dashboard_names()

    # WHEN the dashboard is rendered and `metricbatch savings` reads the same window
    now = time.time()
    dashboard = render_dashboard(
        pipeline.cloudwatch, assembly=assembly, names=names, out=tmp_path_factory.mktemp("dash") / "dashboard.png",
        start=now - WINDOW_SECONDS, end=now + 60,
    )  # fmt: skip
    savings = collect(
        pipeline.cloudwatch, env="dev", period_seconds=WINDOW_SECONDS, service=LOCAL_SERVICE_NAME,
        queue_name=names.queue_name, dlq_name=names.dlq_name, function_name=names.function_name, now=now,
    )  # fmt: skip
    ledger = pipeline.aws.ledger.snapshot()
    yield Run(
        dashboard=dashboard,
        savings=savings,
        successful_put_calls=ledger["calls"]["cloudwatch:PutMetricData"] - ledger["errors"]["cloudwatch:PutMetricData"],
        outage_faults=pipeline.aws.faults.injected["cloudwatch:PutMetricData"],
        requeued=_self_metric(pipeline, "MessagesRequeued"),
        duplicates_skipped=_self_metric(pipeline, "DuplicateMessagesSkipped"),
        set_aside=_self_metric(pipeline, "MessagesSetAside"),
        dlq_sent=pipeline.read_series("AWS/SQS", "NumberOfMessagesSent", {"QueueName": names.dlq_name})[0],
    )


def _value(run: Run, title: str, label: str) -> float:
    row = run.dashboard.widget(title).row(label)
    assert row.unavailable is None, row.unavailable
    value = row.latest
    assert value is not None, f"{title} / {label}: no datapoint"
    return value


def _hourly_total(run: Run, title: str, label: str) -> float:
    row = run.dashboard.widget(title).row(label)
    assert row.values is not None
    return float(np.nansum(row.values))


def test_the_workload_really_had_an_outage_a_requeue_and_a_duplicate(run: Run) -> None:
    assert run.outage_faults == 12
    assert run.requeued >= 1  # the outage outlasted an invocation's retries: data went back to the queue
    assert run.duplicates_skipped == 1
    assert run.set_aside == 1 and run.dlq_sent == 1  # the batcher's own send to the DLQ, counted by AWS/SQS


def test_savings_totals_widget_equals_metricbatch_savings(run: Run) -> None:
    s = run.savings
    assert _value(run, TOTALS, "Metrics published") == s.metrics_published
    assert _value(run, TOTALS, "PutMetricData calls") == s.put_metric_data_calls
    assert _value(run, TOTALS, "API calls saved") == s.api_calls_saved
    assert _value(run, TOTALS, "API calls saved (%)") == pytest.approx(100 * s.api_calls_saved / s.metrics_published)
    # AND those are what happened: every metric published once, the cross-sandbox redelivery twice (5 + 5 counted
    # as 2 samples), the valid metric of the mixed message, the calls the gateway answered with success
    assert s.metrics_published == METRICS + 2 + 1
    assert s.put_metric_data_calls == run.successful_put_calls


def test_dollars_widget_equals_metricbatch_savings(run: Run) -> None:
    s = run.savings
    assert _value(run, DOLLARS, "Saved on PutMetricData ($)") == pytest.approx(s.gross_saving, rel=1e-9)
    assert _value(run, DOLLARS, "Pipeline cost ($)") == pytest.approx(s.pipeline_cost, rel=1e-9)
    assert _value(run, DOLLARS, "Net saving ($)") == pytest.approx(s.net_saving, rel=1e-9)
    # AND the pipeline cost holds every SQS request the dashboard counts: the batcher's send to the DLQ too
    assert s.sqs_requests >= METRICS / 10 + run.dlq_sent
    assert s.lambda_invocations >= 4 and s.lambda_duration_ms > 0


def test_hourly_trends_add_up_to_the_totals(run: Run) -> None:
    # a period that double counted (or dropped) an hour would not add up to the window's total
    s = run.savings
    assert _hourly_total(run, TREND, "API calls saved") == s.api_calls_saved
    assert _hourly_total(run, TREND, "Metrics published") == s.metrics_published
    assert _hourly_total(run, DOLLAR_TREND, "Net saving ($)") == pytest.approx(s.net_saving, rel=1e-9)
    assert _hourly_total(run, DOLLAR_TREND, "SQS requests ($)") == pytest.approx(s.sqs_dollars, rel=1e-9)
    assert _hourly_total(run, DOLLAR_TREND, "Batcher Lambda ($)") == pytest.approx(s.lambda_dollars, rel=1e-9)


def test_every_widget_of_the_body_is_rendered_and_only_p99_is_unavailable(run: Run) -> None:
    body_titles = [w["properties"].get("title", "") for w in run.dashboard.body.widgets]
    assert [w.title for w in run.dashboard.widgets] == body_titles
    unavailable = [(w.title, r.label) for w in run.dashboard.widgets for r in w.rows if r.unavailable]
    assert unavailable == [("Batcher duration (ms)", "p99")]
    # AND the SQS share of the pipeline cost has data: no single value is missing an input
    assert [r.inputs_without_data for w in run.dashboard.widgets for r in w.rows if r.inputs_without_data] == []
    png = run.dashboard.path.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000


def test_the_cli_renders_html_from_the_local_cloudwatch(
    run: Run, pipeline: LocalPipeline, assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = pipeline.dashboard_names()
    out = tmp_path / "dashboard.html"
    argv = ["dashboard", "--assembly", str(assembly), "--out", str(out), "--since", "3h",
            "--queue-name", names.queue_name, "--function-name", names.function_name,
            # this pipeline runs the batcher in-process, under the local service name (the default is the template's,
            # as `metricbatch local` runs the deployed package)
            "--service", names.service_name or ""]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"dashboard written to {out}" in printed
    assert "Over the selected time range: Metrics published = 603; PutMetricData calls = " in printed
    page = out.read_text()
    assert "data:image/png;base64," in page and "FILL(published, 0) - FILL(calls, 0)" in page
    assert "not available locally: The local CloudWatch (moto) cannot compute p99" in page

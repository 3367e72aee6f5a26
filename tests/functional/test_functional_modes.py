"""Modes and wrong settings against the embedded AWS over HTTP (strict CloudWatch):

- issue 12: EMF lines, extracted as CloudWatch Logs would, read back exactly from the strict CloudWatch;
- issue 15: a queue that does not exist is one ERROR naming the setting, no PutMetricData at all, and the producer
  resumes by itself once the queue exists;
- issue 17: AWS_REGION alone is enough for the producer; no region at all is one message, counted, not delivered.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from functional_support import Expected, calls, mismatches, unique_namespace

from metricbatch import MetricProducer
from metricbatch.emulator.emf import EmfExtractor
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.wire import parse_envelope

REPO = Path(__file__).resolve().parents[2]


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env.update(extra, PYTHONPATH=str(REPO))
    return env


def _run(script: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(env),
        check=False,
    )


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


# A service in a child process: 200 metrics over 4 series, values exact in binary; prints flush() and stats().
SERVICE = """
    import json
    from metricbatch import send_metric, flush, stats
    for i in range(200):
        send_metric("Work", (i % 5) * 0.25, namespace="{namespace}", dimensions={{"Host": f"h{{i % 4}}"}})
    done = flush(20)
    print(json.dumps({{"flush": done, "stats": stats()}}))
"""


def _expected_service(namespace: str) -> Expected:
    expected = Expected.empty()
    for i in range(200):
        expected.add(namespace, "Work", (i % 5) * 0.25, {"Host": f"h{i % 4}"})
    return expected


@pytest.fixture
def regionless(tmp_path: Path) -> dict[str, str]:
    """No region in the environment nor in the profile (and no instance metadata to ask)."""
    (tmp_path / "config").write_text("[default]\noutput = json\n")
    return {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# -- issue 12: EMF ---------------------------------------------------------------------------------------------------
def test_emf_lines_extracted_into_the_strict_cloudwatch_read_back_exactly(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Emf")
    stream = io.StringIO()
    producer = MetricProducer(mode="emf", namespace=namespace, emf_stream=stream, handle_sigterm=False)
    # GIVEN busy series (more samples per minute than an EMF array holds, repeated values), several minutes,
    # high resolution, no dimensions and many dimensions
    expected = Expected.empty()
    now = time.time()
    for i in range(3000):
        dims = {"Service": f"s{i % 3}", "Region": "eu"}
        value = (i % 9) * 0.25
        producer.send_metric("Latency", value, unit="Milliseconds", dimensions=dims, timestamp=now - 60 * (i % 4))
        expected.add(namespace, "Latency", value, dims)
    for i in range(150):
        producer.send_metric("Fast", 1.5, unit="Count", storage_resolution=1, timestamp=now - (i % 7))
        expected.add(namespace, "Fast", 1.5)
    wide = {f"D{k:02}": f"v{k}" for k in range(30)}
    producer.send_metric("Wide", 8.0, dimensions=wide)
    expected.add(namespace, "Wide", 8.0, wide)
    assert producer.flush(timeout=10) is True
    producer.close()
    # WHEN CloudWatch Logs extracts the lines (the emulator's extraction, through the strict CloudWatch)
    extract = EmfExtractor(pipeline.aws.client("cloudwatch"))
    lines = stream.getvalue().splitlines()
    for line in lines:
        extract(json.loads(line))
    # THEN every series reads back with its exact sum and count, and the strict CloudWatch refused nothing
    assert mismatches(pipeline, expected) == {}
    assert pipeline.aws.ledger.rejections == []
    assert calls(pipeline, "cloudwatch:PutMetricData") == len(lines)
    # AND no queue was involved
    assert calls(pipeline, "sqs:SendMessageBatch") == 0


# -- issue 15: a queue that does not exist ---------------------------------------------------------------------------
def test_a_queue_that_does_not_exist_is_one_error_and_no_fallback_traffic(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Nope")
    missing = f"{pipeline.aws.endpoint_url}/123456789012/nope-{uuid.uuid4().hex[:6]}"
    # WHEN a service is configured with a queue URL that does not exist
    result = _run(SERVICE.format(namespace=namespace), {**pipeline.env(), "METRICBATCH_QUEUE_URL": missing})
    report = _report(result)
    # THEN flush() says not delivered, the metrics are held (not dropped, not published), stats() says why
    stats = report["stats"]
    assert report["flush"] is False
    assert (stats["sent"], stats["fallback_published"], stats["buffered"]) == (0, 0, 200)
    assert "AWS.SimpleQueueService.NonExistentQueue" in stats["config_error"]
    assert missing in stats["config_error"] and "METRICBATCH_QUEUE_URL" in stats["config_error"]
    # AND one ERROR line named the setting and what happens to the metrics; at exit one line counted them
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert "METRICBATCH_QUEUE_URL" in lines[0] and missing in lines[0] and "held in memory" in lines[0]
    assert "not published directly" in lines[0]
    assert lines[1] == (
        "metricbatch dropped 200 metric(s) in total (buffer full: 0, SQS and CloudWatch unavailable: 0, "
        "held for a wrong setting until exit: 200)"
    )
    # AND not one PutMetricData call: the fallback is for outages, not a permanent route
    assert calls(pipeline, "cloudwatch:PutMetricData") == 0
    assert calls(pipeline, "sqs:SendMessageBatch") == 1
    assert pipeline.read_series(namespace, "Work", {"Host": "h0"}) == (0.0, 0.0)


def test_the_producer_resumes_once_the_queue_exists(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    name = f"late-{uuid.uuid4().hex[:8]}"
    url = f"{pipeline.aws.endpoint_url}/123456789012/{name}"
    producer = MetricProducer(
        url,
        namespace=unique_namespace("Late"),
        sqs_client=pipeline.sqs,
        cloudwatch_client=pipeline.cloudwatch,
        flush_interval=0.1,
        queue_retry_interval=0.3,
        handle_sigterm=False,
    )
    sent: list[float] = []
    try:
        # GIVEN a service that started before its queue existed
        for i in range(300):
            producer.send_metric("Late", (i % 3) * 0.5)
            sent.append((i % 3) * 0.5)
        assert producer.flush(timeout=10) is False
        assert "NonExistentQueue" in producer.stats()["config_error"]
        # WHEN the queue is created, and the service keeps sending
        assert pipeline.sqs.create_queue(QueueName=name)["QueueUrl"] == url
        for _ in range(100):
            producer.send_metric("Late", 4.0)
            sent.append(4.0)
        deadline = time.monotonic() + 30
        while not producer.flush(timeout=5) and time.monotonic() < deadline:
            time.sleep(0.1)
        # THEN it resumed by itself: everything held and new is in the queue, exactly once
        stats = producer.stats()
        assert (stats["sent"], stats["buffered"], stats["config_error"]) == (400, 0, "")
        assert stats["queue_retries"] >= 1
    finally:
        producer.close(timeout=5)
    got: list[float] = []
    while batch := pipeline.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            for metric in parse_envelope(message["Body"])["metrics"]:
                if "value" in metric:
                    got.append(float(metric["value"]))
                    continue
                counts = metric.get("counts") or [1] * len(metric["values"])
                for value, count in zip(metric["values"], counts, strict=True):
                    got.extend([float(value)] * int(count))
            pipeline.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(got) == sorted(sent)
    # AND nothing was ever published directly
    assert calls(pipeline, "cloudwatch:PutMetricData") == 0


# -- issue 17: the region --------------------------------------------------------------------------------------------
def test_aws_region_alone_is_enough_for_the_producer(clean_pipeline: LocalPipeline, regionless: dict[str, str]) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Region")
    # GIVEN only AWS_REGION (botocore itself reads AWS_DEFAULT_REGION and the profile, not AWS_REGION)
    env = {k: v for k, v in pipeline.env().items() if k != "AWS_DEFAULT_REGION"}
    report = _report(_run(SERVICE.format(namespace=namespace), {**env, **regionless}))
    # THEN every metric went through the queue and reads back exactly
    assert report["flush"] is True
    assert (report["stats"]["mode"], report["stats"]["sent"], report["stats"]["dropped"]) == ("sqs", 200, 0)
    pipeline.drain(timeout=60)
    assert mismatches(pipeline, _expected_service(namespace)) == {}


def test_no_region_is_one_message_counted_and_not_delivered(
    clean_pipeline: LocalPipeline, regionless: dict[str, str]
) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("NoRegion")
    env = {k: v for k, v in pipeline.env().items() if k not in {"AWS_REGION", "AWS_DEFAULT_REGION"}}
    result = _run(SERVICE.format(namespace=namespace), {**env, **regionless})
    report = _report(result)
    # THEN nothing raised in the caller; one line names both variables; the metrics are counted; flush says so
    (line,) = result.stderr.strip().splitlines()
    assert "AWS_REGION" in line and "AWS_DEFAULT_REGION" in line
    stats = report["stats"]
    assert report["flush"] is False
    assert (stats["mode"], stats["discarded"], stats["sent"]) == ("off", 200, 0)
    assert "AWS_REGION" in stats["mode_reason"]
    assert pipeline.aws.ledger.snapshot()["calls"] == {}

"""Real processes against the embedded AWS: their environment, and the samples they left on the queue."""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parents[2]


def child_env(pipeline: LocalPipeline, namespace: str, **extra: str) -> dict[str, str]:
    """The environment of a service process: the pipeline's queue and endpoints, this worktree's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_", "POWERTOOLS_"))}
    env.update(pipeline.env(), METRICBATCH_NAMESPACE=namespace, PYTHONPATH=str(REPO), **extra)
    return env


def samples_on_queue(pipeline: LocalPipeline, namespace: str, name: str, dimension: str) -> Counter[str]:
    """Consume the queue: samples of metric ``name`` in ``namespace`` per value of ``dimension`` (exact, as sent)."""
    counts: Counter[str] = Counter()
    while True:
        batch = pipeline.sqs.receive_message(
            QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", [])
        if not batch:
            return counts
        for message in batch:
            for metric in json.loads(message["Body"])["metrics"]:
                if metric["namespace"] == namespace and metric["name"] == name:
                    n = sum(metric["counts"]) if "counts" in metric else len(metric.get("values", [0]))
                    counts[metric.get("dimensions", {}).get(dimension, "")] += int(n)
        pipeline.sqs.delete_message_batch(
            QueueUrl=pipeline.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)

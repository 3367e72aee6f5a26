"""What the functional tests read back from the embedded AWS: series sums, DLQ contents, calls counted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from metricbatch.emulator.embedded import DUMMY_CREDENTIALS
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.wire import ATTR_REASON, ATTR_RULE

Dims = dict[str, str]


def unique_namespace(prefix: str = "Func") -> str:
    """A namespace no other test writes to (CloudWatch keeps every series for the pipeline's lifetime)."""
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class SeriesKey:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()


@dataclass
class Expected:
    """Sums and sample counts a test expects per series; values should be exact in binary (multiples of 1/4)."""

    totals: dict[SeriesKey, list[float]]

    @classmethod
    def empty(cls) -> Expected:
        return cls(totals={})

    def add(self, namespace: str, name: str, value: float, dimensions: Dims | None = None) -> None:
        key = SeriesKey(namespace, name, tuple(sorted((dimensions or {}).items())))
        entry = self.totals.setdefault(key, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1

    @property
    def metrics(self) -> int:
        return int(sum(count for _, count in self.totals.values()))


def read_back(pipeline: LocalPipeline, expected: Expected) -> dict[SeriesKey, tuple[float, float]]:
    """Every expected series as CloudWatch reports it: (Sum, SampleCount)."""
    return {key: pipeline.read_series(key.namespace, key.name, dict(key.dimensions) or None) for key in expected.totals}


def mismatches(pipeline: LocalPipeline, expected: Expected) -> dict[SeriesKey, tuple[tuple[float, float], ...]]:
    """Series whose read-back (sum, count) differs from what was sent: {key: (expected, actual)}."""
    actual = read_back(pipeline, expected)
    return {
        key: ((want[0], want[1]), actual[key])
        for key, want in expected.totals.items()
        if actual[key] != (want[0], want[1])
    }


@dataclass(frozen=True)
class DlqMessage:
    body: str
    rule: str | None
    reason: str | None

    def json(self) -> Any:
        """The body parsed strictly (RFC 8259: no NaN or Infinity), as JSON.parse in Node would."""

        def refuse(constant: str) -> Any:
            raise ValueError(f"the DLQ body is not JSON: it holds {constant}")

        return json.loads(self.body, parse_constant=refuse)


def take_dlq(pipeline: LocalPipeline, *, wait_seconds: float = 0.0) -> list[DlqMessage]:
    """Receive and delete everything in the DLQ (so the next test starts from an empty one)."""
    messages: list[DlqMessage] = []
    deadline = time.monotonic() + wait_seconds
    while True:
        response = pipeline.sqs.receive_message(
            QueueUrl=pipeline.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        batch = response.get("Messages", [])
        if not batch:
            if time.monotonic() >= deadline or messages:
                return messages
            time.sleep(0.2)
            continue
        for message in batch:
            attributes = message.get("MessageAttributes", {})
            messages.append(
                DlqMessage(
                    body=message["Body"],
                    rule=attributes.get(ATTR_RULE, {}).get("StringValue"),
                    reason=attributes.get(ATTR_REASON, {}).get("StringValue"),
                )
            )
        pipeline.sqs.delete_message_batch(
            QueueUrl=pipeline.dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def receive_all(pipeline: LocalPipeline, queue_url: str | None = None) -> list[dict[str, Any]]:
    """Receive (without deleting) every visible message of a queue; they become visible again after the timeout."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = pipeline.sqs.receive_message(
            QueueUrl=queue_url or pipeline.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def peek(pipeline: LocalPipeline, queue_url: str | None = None) -> list[dict[str, Any]]:
    """Up to 10 visible messages of a queue, left visible (one receive with a visibility timeout of 0)."""
    response = pipeline.sqs.receive_message(
        QueueUrl=queue_url or pipeline.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
    )
    return list(response.get("Messages", []))


def discard_all(pipeline: LocalPipeline) -> int:
    """Delete every visible message of the main queue; returns how many there were."""
    messages = receive_all(pipeline)
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        pipeline.sqs.delete_message_batch(
            QueueUrl=pipeline.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
    return len(messages)


def send_bodies(pipeline: LocalPipeline, bodies: Iterable[str]) -> None:
    for body in bodies:
        pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=body)


def calls(pipeline: LocalPipeline, operation: str) -> int:
    return int(pipeline.aws.ledger.count(operation))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_client(service: str, port: int) -> Any:
    """A boto3 client for an endpoint on a closed loopback port: every call fails with a connection error."""
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )


def now() -> float:
    return time.time()


def child_env(pipeline: LocalPipeline, namespace: str) -> dict[str, str]:
    """A service process's environment: this one without AWS/metricbatch/Powertools settings, plus the pipeline's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_", "POWERTOOLS_"))}
    return {**env, **pipeline.env(), "METRICBATCH_NAMESPACE": namespace}


def run_service(
    script: str, env: dict[str, str], *args: str, timeout: float
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``python -c script args...`` to its end; the finished process and how long it took (s)."""
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", script, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout
    )
    return child, time.monotonic() - started

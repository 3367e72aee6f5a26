"""A WSGI layer in front of moto: counts every AWS request, injects faults, and enforces CloudWatch's rules."""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from metricbatch.emulator.local_cloudwatch import (
    UNSUPPORTED_CODE,
    fold_values_into_statistic_sets,
    unsupported_statistics_message,
)
from metricbatch.emulator.service_metrics import SqsServiceMetrics
from metricbatch.emulator.strict_cloudwatch import CloudWatchRejection, validate_put_metric_data
from metricbatch.limits import SQS_BILLING_CHUNK_BYTES

logger = logging.getLogger(__name__)

# Requests made on behalf of CloudWatch Logs' EMF extraction carry this in their User-Agent and are counted apart.
EMF_AGENT_MARK = "metricbatch-emf-extraction"
EMF_SUFFIX = "#emf"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class RequestLedger:
    """Every request the embedded AWS served, by operation ("sqs:SendMessageBatch", "cloudwatch:PutMetricData")."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    request_bytes: Counter[str] = field(default_factory=Counter)
    response_bytes: Counter[str] = field(default_factory=Counter)
    sqs_billed_requests: int = 0  # 64 KiB chunks of payload, as SQS bills them
    rejections: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, request_size: int, response_size: int, status: int) -> None:
        with self._lock:
            self.calls[operation] += 1
            self.request_bytes[operation] += request_size
            self.response_bytes[operation] += response_size
            if status >= 400:
                self.errors[operation] += 1
            if operation.startswith("sqs:"):
                payload = max(request_size, response_size)
                self.sqs_billed_requests += max(1, math.ceil(payload / SQS_BILLING_CHUNK_BYTES))

    def reject(self, reason: str) -> None:
        """Note a request the strict check refused (and why)."""
        with self._lock:
            self.rejections.append(reason)

    def count(self, operation: str) -> int:
        with self._lock:
            return self.calls[operation]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "errors": dict(self.errors),
                "request_bytes": dict(self.request_bytes),
                "response_bytes": dict(self.response_bytes),
                "sqs_billed_requests": self.sqs_billed_requests,
                "rejections": list(self.rejections),
            }

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.errors.clear()
            self.request_bytes.clear()
            self.response_bytes.clear()
            self.sqs_billed_requests = 0
            self.rejections.clear()


@dataclass
class Fault:
    """Fail a share of one operation's requests: ``kind`` is "throttle" (400 Throttling) or "unavailable" (503);
    "delay" serves the request normally after ``delay_seconds`` (a slow service), and any kind waits that long first
    (a stalled request)."""

    operation: str
    kind: str = "throttle"
    probability: float = 1.0
    remaining: int | None = None  # stop after this many injected faults (None: keep going)
    delay_seconds: float = 0.0
    skip: int = 0  # let this many matching requests through untouched first


class FaultPlan:
    """Faults injected by the gateway before requests reach moto; thread-safe, seeded for repeatable runs."""

    def __init__(self, seed: int = 7) -> None:
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pick(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation != operation or fault.remaining == 0:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if self._rng.random() < fault.probability:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    self.injected[operation] += 1
                    return fault
        return None


_FAULT_RESPONSES = {
    "throttle": ("400 Bad Request", "Throttling", "Rate exceeded"),
    "unavailable": ("503 Service Unavailable", "ServiceUnavailable", "Service is unavailable, try again"),
    "internal": ("500 Internal Server Error", "InternalServiceFault", "Internal service fault"),
}
_SERVICE_OF_TARGET = {"GraniteServiceVersion20100801": "cloudwatch", "AmazonSQS": "sqs"}


def _operation(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if "." in target:
        prefix, op = target.split(".", 1)
        return f"{_SERVICE_OF_TARGET.get(prefix, prefix)}:{op}"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = auth.split("Credential=", 1)[1].split("/")[3] if "Credential=" in auth else "unknown"
    service = {"monitoring": "cloudwatch"}.get(service, service)
    action = parse_qs(body.decode("latin-1")).get("Action", [""])[0] if body else ""
    return f"{service}:{action or environ.get('PATH_INFO', '')}"


def _error(start_response: Callable[..., Any], status: str, code: str, message: str) -> list[bytes]:
    payload = json.dumps({"__type": code, "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(payload))),
            ("x-amzn-query-error", f"{code};Sender"),
        ],
    )
    return [payload]


class AwsGateway:
    """WSGI middleware: ledger, faults, then the strict CloudWatch check, then moto."""

    def __init__(self, app: WsgiApp, *, strict: bool = True) -> None:
        self.app = app
        self.strict = strict
        self.ledger = RequestLedger()
        self.faults = FaultPlan()
        self.sqs_metrics = SqsServiceMetrics()  # AWS/SQS message counts, put into CloudWatch when flushed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            body = gzip.decompress(body)
            environ.pop("HTTP_CONTENT_ENCODING")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        operation = _operation(environ, body)
        if EMF_AGENT_MARK in environ.get("HTTP_USER_AGENT", ""):
            operation += EMF_SUFFIX  # EMF extraction stands in for CloudWatch Logs: not a billed PutMetricData
        status_holder: list[int] = [200]

        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status_holder[0] = int(status.split(maxsplit=1)[0])
            return start_response(status, headers, *args)

        fault = self.faults.pick(operation)
        if fault is not None and fault.delay_seconds > 0:
            time.sleep(fault.delay_seconds)
        if fault is not None and fault.kind != "delay":
            status, code, message = _FAULT_RESPONSES[fault.kind]
            result = _error(recording_start_response, status, code, message)
        else:
            result = self._serve(operation, body, environ, recording_start_response)
        self.ledger.record(operation, len(body), sum(len(chunk) for chunk in result), status_holder[0])
        if operation.startswith("sqs:") and status_holder[0] < 400:
            self.sqs_metrics.observe(operation, body, b"".join(result))
        return result

    def _serve(
        self, operation: str, body: bytes, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        """The strict CloudWatch check, the local CloudWatch's corrections, then moto."""
        unsupported = unsupported_statistics_message(operation, body)
        if unsupported is not None:
            return _error(start_response, "400 Bad Request", UNSUPPORTED_CODE, unsupported)
        if operation.startswith("cloudwatch:PutMetricData"):  # EMF extraction's too (EMF_SUFFIX), never strict
            strict = self.strict and operation == "cloudwatch:PutMetricData"
            try:
                request = json.loads(body or b"{}")
                if strict:
                    validate_put_metric_data(request, len(body))
            except CloudWatchRejection as rejection:
                self.ledger.reject(f"{rejection.code}: {rejection.message}")
                return _error(start_response, "400 Bad Request", rejection.code, rejection.message)
            except ValueError as exc:
                if strict:
                    return _error(start_response, "400 Bad Request", "SerializationException", str(exc))
            else:
                if isinstance(request, dict) and fold_values_into_statistic_sets(request):
                    rewritten = json.dumps(request).encode()
                    environ["wsgi.input"] = io.BytesIO(rewritten)
                    environ["CONTENT_LENGTH"] = str(len(rewritten))
        try:
            return list(self.app(environ, start_response))
        except NotImplementedError as exc:
            # moto raises this for actions it lacks (e.g. StartMessageMoveTask); werkzeug would log a 45-line
            # traceback in the terminal of `metricbatch local`. Clients get a clean error they can act on.
            logger.info("the local AWS does not implement %s: %s", operation, exc)
            message = f"The local AWS (moto) does not implement {operation}"
            return _error(start_response, "400 Bad Request", UNSUPPORTED_CODE, message)

"""AWS SDK calls measured without code: ``instrument_boto3()`` records every API call of a boto3 session's clients.

Like the AWS SDK for Java 2.x's ``CloudWatchMetricPublisher``, per API call (all attempts together):

- ``ApiCallDuration`` (Milliseconds): from the call's parameters to its result or error, retries and backoff
  included;
- ``ApiCallSuccessful`` (1 or 0, unit None): its average is the success rate, its sample count the call count;
- ``RetryCount`` (Count): attempts after the first.

Dimensions ``ServiceId`` (``DynamoDB``, ``S3``, ...) and ``OperationName`` (``PutItem``, ...). A failed call is
also recorded with ``ErrorType`` (one of ``ERROR_TYPES``: throttling told apart from faults, bounded in
cardinality), through a roll-up, so the ``ServiceId, OperationName`` series still count every call.

botocore's event hooks carry it: ``provide-client-params`` notes the start, ``after-call`` and ``after-call-error``
record. Handlers go on the session (clients made later copy them) and on the session's existing clients. A
handler never raises into the SDK call, and the pipeline's own ``SQS SendMessageBatch`` and ``CloudWatch
PutMetricData`` are never recorded (no feedback loop).
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Final

from metricbatch.aws.retry import SDK_THROTTLING_CODES
from metricbatch.producer.default import default_producer
from metricbatch.producer.producer import MetricProducer
from metricbatch.producer.series import SeriesHandle
from metricbatch.validation import check_namespace

logger = logging.getLogger(__name__)

# Where the SDK metrics go unless instrument_boto3(namespace=...) says otherwise ("AWS/" is CloudWatch's own).
DEFAULT_SDK_NAMESPACE: Final = "MetricBatch/AwsSdk"
API_CALL_DURATION: Final = "ApiCallDuration"
API_CALL_SUCCESSFUL: Final = "ApiCallSuccessful"
RETRY_COUNT: Final = "RetryCount"
SERVICE_ID: Final = "ServiceId"
OPERATION_NAME: Final = "OperationName"
ERROR_TYPE: Final = "ErrorType"
# The ErrorType values (the AWS SDK for Java 2.x's, plus ClientError for a 4xx that is not throttling).
THROTTLING: Final = "Throttling"
SERVER_ERROR: Final = "ServerError"
CLIENT_ERROR: Final = "ClientError"
CONFIGURED_TIMEOUT: Final = "ConfiguredTimeout"
IO_ERROR: Final = "IO"
OTHER_ERROR: Final = "Other"
ERROR_TYPES: Final = (THROTTLING, SERVER_ERROR, CLIENT_ERROR, CONFIGURED_TIMEOUT, IO_ERROR, OTHER_ERROR)
# HTTP status of a throttled call in any service (codes: aws/retry.SDK_THROTTLING_CODES).
THROTTLING_STATUS: Final = 429
# The pipeline's own calls (ServiceId, OperationName): recording them would feed the queue from its own sends.
PIPELINE_OPERATIONS: Final = frozenset({("SQS", "SendMessageBatch"), ("CloudWatch", "PutMetricData")})

# ApiCallDuration is recorded to 0.1 ms: within CloudWatch's own percentile precision, and it keeps the distinct
# values a busy client buffers per series and minute (the producer's memory bound) in the thousands at most.
DURATION_RESOLUTION_MS: Final = 0.1
_START = "metricbatch.instrument.start"  # the request context's key for (start, model)
_MAX_CACHED_HANDLES = 10_000


def classify_exception(exception: BaseException) -> str:
    """The ErrorType of a call that ended without an AWS response (connection, timeout, ...)."""
    from botocore.exceptions import ConnectTimeoutError, HTTPClientError, ReadTimeoutError

    if isinstance(exception, ConnectTimeoutError | ReadTimeoutError):
        return CONFIGURED_TIMEOUT
    if isinstance(exception, HTTPClientError | ConnectionError | OSError):
        return IO_ERROR
    return OTHER_ERROR


def classify_response(status: int, code: str | None) -> str:
    """The ErrorType of a failed call that got an AWS error response."""
    if status == THROTTLING_STATUS or code in SDK_THROTTLING_CODES:
        return THROTTLING
    if status >= 500:
        return SERVER_ERROR
    if 400 <= status < 500:
        return CLIENT_ERROR
    return OTHER_ERROR


class Boto3Instrumentation:
    """The hooks on one botocore session and its clients; ``undo()`` removes them (idempotent)."""

    _ids = itertools.count()

    def __init__(self, botocore_session: Any, *, producer: MetricProducer | None, namespace: str) -> None:
        self.namespace = namespace
        self._producer = producer
        self._session = botocore_session
        self._active = True
        self._unique = f"metricbatch.instrument.{next(self._ids)}"
        self._emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._handles: dict[tuple[Any, ...], tuple[SeriesHandle, SeriesHandle, SeriesHandle]] = {}
        self._reported = False
        check_namespace(namespace)  # now, not on the first API call

    @property
    def active(self) -> bool:
        return self._active

    def attach(self, events: Any) -> None:
        """Register the handlers on one event emitter (a session's or a client's); a second time is a no-op."""
        events.register("provide-client-params", self._on_start, unique_id=f"{self._unique}.start")
        events.register("after-call", self._on_response, unique_id=f"{self._unique}.response")
        events.register("after-call-error", self._on_error, unique_id=f"{self._unique}.error")
        self._emitters.add(events)

    def undo(self) -> None:
        """Stop recording: unregister from the session and every client known; clients made in between keep a
        handler that does nothing."""
        self._active = False
        for events in list(self._emitters):
            events.unregister("provide-client-params", unique_id=f"{self._unique}.start")
            events.unregister("after-call", unique_id=f"{self._unique}.response")
            events.unregister("after-call-error", unique_id=f"{self._unique}.error")
        self._emitters = weakref.WeakSet()
        with _registry_lock:
            if _registry.get(id(self._session)) is self:
                del _registry[id(self._session)]

    # -- the handlers: cheap, and never raise into the SDK call ----------------------------------------------------
    def _on_start(self, model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> None:
        if self._active and context is not None and model is not None:
            context[_START] = (time.perf_counter(), model)

    def _on_response(
        self, http_response: Any = None, parsed: Any = None, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        started = context.pop(_START, None) if context is not None else None
        if started is None or not self._active:
            return
        try:
            status = http_response.status_code if http_response is not None else 200
            error_type = None
            if status >= 300:
                error = parsed.get("Error", {}) if isinstance(parsed, Mapping) else {}
                error_type = classify_response(status, error.get("Code"))
            self._record(started, context, error_type)
        except Exception as exc:
            self._report(exc)

    def _on_error(
        self, exception: BaseException | None = None, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        started = context.pop(_START, None) if context is not None else None
        if started is None or not self._active:
            return
        try:
            error_type = classify_exception(exception) if exception is not None else OTHER_ERROR
            self._record(started, context, error_type)
        except Exception as exc:
            self._report(exc)

    def _record(self, started: tuple[float, Any], context: Any, error_type: str | None) -> None:
        start, model = started
        # To 0.1 ms (DURATION_RESOLUTION_MS): a busy client's durations merge into few distinct values per minute.
        elapsed_ms = round((time.perf_counter() - start) * 1000.0, 1)
        service_id = str(model.service_model.service_id)
        operation = model.name
        if (service_id, operation) in PIPELINE_OPERATIONS:
            return
        retries = context.get("retries")
        attempts = retries.get("attempt", 1) if retries else 1
        retried = float(attempts - 1) if attempts > 1 else 0.0
        producer = self._producer or default_producer()
        key = (producer, service_id, operation, error_type)
        handles = self._handles.get(key)
        if handles is None:
            handles = self._handles_for(producer, service_id, operation, error_type)
            if len(self._handles) >= _MAX_CACHED_HANDLES:
                self._handles.clear()
            self._handles[key] = handles
        duration, successful, retry_count = handles
        duration.send(elapsed_ms)
        successful.send(0.0 if error_type else 1.0)
        retry_count.send(retried)

    def _handles_for(
        self, producer: MetricProducer, service_id: str, operation: str, error_type: str | None
    ) -> tuple[SeriesHandle, SeriesHandle, SeriesHandle]:
        dimensions = {SERVICE_ID: service_id, OPERATION_NAME: operation}
        rollups = None
        if error_type is not None:  # also without ErrorType (default dimensions kept): those series count every call
            dimensions[ERROR_TYPE] = error_type
            defaults = [name for name, _ in producer.config.default_dimensions if name != ERROR_TYPE]
            rollups = [[SERVICE_ID, OPERATION_NAME, *defaults]]
        common: dict[str, Any] = {"namespace": self.namespace, "dimensions": dimensions, "rollups": rollups}
        return (
            producer.series(API_CALL_DURATION, unit="Milliseconds", **common),
            producer.series(API_CALL_SUCCESSFUL, **common),
            producer.series(RETRY_COUNT, unit="Count", **common),
        )

    def _report(self, exc: Exception) -> None:
        if not self._reported:  # once: a wrong setting would otherwise log on every API call
            self._reported = True
            logger.error("metricbatch: AWS SDK call not recorded: %s", exc)
        else:
            logger.debug("metricbatch: AWS SDK call not recorded: %s", exc)


_registry: dict[int, Boto3Instrumentation] = {}
_registry_lock = threading.Lock()


def _botocore_session(session: Any) -> Any:
    if session is None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    return getattr(session, "_session", session)  # a boto3 Session wraps a botocore one


def instrument_boto3(
    session: Any = None, *, producer: MetricProducer | None = None, namespace: str = DEFAULT_SDK_NAMESPACE
) -> Boto3Instrumentation:
    """Record every API call of a boto3 session's clients, made before or after this call, as metrics.

    Args:
        session: a ``boto3.Session`` (or botocore session); default boto3's default session (``boto3.client``).
        producer: where the metrics go; default the module-level producer (``METRICBATCH_*`` variables), looked
            up at each call.
        namespace: the metrics' namespace; default ``MetricBatch/AwsSdk``.

    Returns:
        The instrumentation; ``undo()`` stops it (so does ``uninstrument_boto3(session)``). Instrumenting a session
        again returns the same one: nothing is counted twice.

    Raises:
        InvalidMetricError: ``namespace`` breaks a CloudWatch rule.
    """
    from botocore.client import BaseClient

    botocore_session = _botocore_session(session)
    with _registry_lock:
        existing = _registry.get(id(botocore_session))
        if existing is not None and existing.active:
            return existing
        instrumentation = Boto3Instrumentation(botocore_session, producer=producer, namespace=namespace)
        _registry[id(botocore_session)] = instrumentation
    instrumentation.attach(botocore_session.get_component("event_emitter"))  # clients made from now on copy them
    # Clients made before: each holds a copy of the session's emitter taken when it was made, and the session's
    # data loader (the one link from a client back to its session).
    loader = botocore_session.get_component("data_loader")
    for candidate in gc.get_objects():
        try:
            if isinstance(candidate, BaseClient) and getattr(candidate, "_loader", None) is loader:
                instrumentation.attach(candidate.meta.events)
        except Exception as exc:  # an odd object on the heap must not stop the others
            logger.debug("metricbatch: skipped an object while looking for clients: %s", exc)
    return instrumentation


def uninstrument_boto3(session: Any = None) -> bool:
    """Undo ``instrument_boto3`` for this session (default boto3's default one); False if it was not instrumented."""
    botocore_session = _botocore_session(session)
    with _registry_lock:
        instrumentation = _registry.get(id(botocore_session))
    if instrumentation is None:
        return False
    instrumentation.undo()
    return True

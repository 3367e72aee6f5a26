"""AWS SDK calls measured without code: ``instrument_boto3()`` records every API call of a boto3 session's clients.

Like the AWS SDK for Java 2.x's ``CloudWatchMetricPublisher``, per API call (all attempts together):

- ``ApiCallDuration`` (Milliseconds): from the call to its result or error, retries and backoff included;
- ``ApiCallSuccessful`` (1 or 0, unit None): its average is the success rate, its sample count the call count;
- ``RetryCount`` (Count): attempts after the first.

Dimensions ``ServiceId`` (``DynamoDB``, ``S3``, ...) and ``OperationName`` (``PutItem``, ...). A failed call is
also recorded with ``ErrorType`` (one of ``ERROR_TYPES``: throttling told apart from faults, bounded in
cardinality), through a roll-up, so the ``ServiceId, OperationName`` series still count every call.

How: every API call of a botocore client goes through ``BaseClient._make_api_call`` (as OpenTelemetry's and X-Ray's
botocore instrumentations use it). Client classes the session makes from now on get a ``_make_api_call`` that
measures it (botocore's ``creating-client-class`` event); clients made before are measured per instance. No
per-call event handler: botocore's event dispatch and three buffered samples per call cost more than the 5 µs
budget, so a call is only noted in the producer's ``ApiCallTally`` (call_tally.py) and counted into its buffer
each round (memory and off modes, which have no rounds, record it at once). The retries of a
call that ended without a response come from botocore's ``after-call-error`` event. Nothing here raises into the
SDK call, and the pipeline's own ``SQS SendMessageBatch`` and ``CloudWatch PutMetricData`` are never recorded (no
feedback loop).
"""

from __future__ import annotations

import gc
import inspect
import itertools
import logging
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import Any, Final

from botocore.client import BaseClient

from metricbatch.aws.retry import SDK_THROTTLING_CODES
from metricbatch.producer.call_tally import MAX_PENDING_CALLS, ApiCallTally, CallKey, CallSeries
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
_PIPELINE_NAMES = frozenset(operation for _, operation in PIPELINE_OPERATIONS)

# ApiCallDuration is recorded to 0.1 ms: within CloudWatch's own percentile precision, and it keeps the distinct
# values a busy client buffers per series and minute (the producer's memory bound) in the thousands at most.
DURATION_RESOLUTION_MS: Final = 0.1
_TENTHS_OF_MS = 10_000.0  # seconds -> tenths of a millisecond (DURATION_RESOLUTION_MS)
_ATTEMPTS = "_metricbatch_attempts"  # botocore's attempt count, noted on an exception that has no response
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
    """The measuring of one botocore session's clients; ``undo()`` stops it (idempotent)."""

    _ids = itertools.count()

    def __init__(self, botocore_session: Any, *, producer: MetricProducer | None, namespace: str) -> None:
        self.namespace = namespace
        self._producer = producer
        self._session = botocore_session
        self._active = True
        self._unique = f"metricbatch.instrument.{next(self._ids)}"
        self._emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._wrapped: weakref.WeakSet[Any] = weakref.WeakSet()  # clients made before, measured per instance
        self._class_calls: weakref.WeakSet[Any] = weakref.WeakSet()  # the client classes' _make_api_call made since
        self._handles: dict[tuple[Any, ...], tuple[SeriesHandle, SeriesHandle, SeriesHandle]] = {}
        self._tallies: dict[MetricProducer, ApiCallTally | None] = {}
        self._last: tuple[MetricProducer | None, ApiCallTally | None] = (None, None)  # the last producer's tally
        self._lock = threading.Lock()
        self._reported = False
        check_namespace(namespace)  # now, not on the first API call

    @property
    def active(self) -> bool:
        return self._active

    def attach_session(self, events: Any) -> None:
        """The session's clients made from now on are measured (their classes' ``_make_api_call`` is ours)."""
        events.register("creating-client-class", self._on_client_class, unique_id=f"{self._unique}.class")
        self._note_attempts_on(events)

    def attach_client(self, client: Any) -> None:
        """A client made before: its calls are measured from now on (a second time, or one of ours: no-op)."""
        call = getattr(type(client), "_make_api_call", None)
        if client in self._wrapped or call in self._class_calls or inspect.iscoroutinefunction(call):
            return  # (an async client, aiobotocore's, is not measured)
        # Its class's _make_api_call (that of an earlier, undone instrumentation passes calls on) is next.
        client._make_api_call = types.MethodType(_measured_call(self, type(client)), client)
        self._wrapped.add(client)
        self._note_attempts_on(client.meta.events)

    def _note_attempts_on(self, events: Any) -> None:
        events.register("after-call-error", self._on_error, unique_id=f"{self._unique}.error")
        self._emitters.add(events)

    def undo(self) -> None:
        """Stop measuring: the session's and the known clients' hooks go; client classes made meanwhile keep a
        ``_make_api_call`` that only passes calls on."""
        self._active = False
        for events in list(self._emitters):
            events.unregister("creating-client-class", unique_id=f"{self._unique}.class")
            events.unregister("after-call-error", unique_id=f"{self._unique}.error")
        self._emitters = weakref.WeakSet()
        for client in list(self._wrapped):
            client.__dict__.pop("_make_api_call", None)
        self._wrapped = weakref.WeakSet()
        with _registry_lock:
            if _registry.get(id(self._session)) is self:
                del _registry[id(self._session)]

    # -- counting: never raises into the SDK call (the success path is _measured_call) ---------------------------
    def failed(self, client: Any, operation_name: str, start: float, exc: Exception) -> None:
        try:
            from botocore.exceptions import ClientError

            elapsed_ms = int((time.perf_counter() - start) * _TENTHS_OF_MS + 0.5) / 10.0
            model = client._service_model
            if (model.service_id, operation_name) in PIPELINE_OPERATIONS:
                return
            if isinstance(exc, ClientError):  # an AWS error response (after its retries)
                response: Any = exc.response
                metadata = response.get("ResponseMetadata") or {}
                error = response.get("Error") or {}
                error_type = classify_response(metadata.get("HTTPStatusCode", 0), error.get("Code"))
                retries = metadata.get("RetryAttempts", 0)
            else:  # no response: connection, timeout, parameters, ...
                error_type = classify_exception(exc)
                retries = max(0, getattr(exc, _ATTEMPTS, 1) - 1)
            self._count((model, operation_name, error_type), elapsed_ms, retries)
        except Exception as error:
            self._report(error)

    def _count(self, key: CallKey, elapsed_ms: float, retries: int) -> None:
        producer = self._producer or default_producer()
        tally = self._tally_for(producer)
        if tally is not None:
            tally.add(key, elapsed_ms, retries)
        else:
            self.record_now(producer, key, elapsed_ms, retries)

    def record_now(self, producer: MetricProducer, key: CallKey, elapsed_ms: float, retries: int) -> None:
        """memory and off modes: the three samples recorded at once (``captured()`` shows them after the call)."""
        duration, successful, retry_count = self._handles_of(producer, key)
        duration.send(elapsed_ms)
        successful.send(0.0 if key[2] else 1.0)
        retry_count.send(float(retries))

    def _on_error(self, exception: BaseException | None = None, context: Any = None, **_: Any) -> None:
        # A call that ended without a response carries no retry count: note botocore's on the exception.
        retries = context.get("retries") if isinstance(context, dict) else None
        if exception is not None and retries:
            try:
                setattr(exception, _ATTEMPTS, retries.get("attempt", 1))
            except Exception as exc:  # an exception type without attributes: its retries count as 0
                logger.debug("metricbatch: retries of a failed call not noted: %s", exc)

    def _on_client_class(
        self, class_attributes: dict[str, Any] | None = None, base_classes: list[type] | None = None, **_: Any
    ) -> None:
        # Only botocore's own clients: an async client class (aiobotocore's bases) has a coroutine _make_api_call.
        if not self._active or class_attributes is None or base_classes is None or BaseClient not in base_classes:
            return
        # Next in line: botocore's BaseClient._make_api_call, looked up at each call (so a wrapper added later, as
        # X-Ray's patch() adds one, still runs), or what another handler put here first.
        existing = class_attributes.get("_make_api_call")
        base = BaseClient if existing is None else types.SimpleNamespace(_make_api_call=existing)
        call = class_attributes["_make_api_call"] = _measured_call(self, base)
        self._class_calls.add(call)

    # -- where the counts go ---------------------------------------------------------------------------------------
    def _tally_for(self, producer: MetricProducer) -> ApiCallTally | None:
        with self._lock:
            if producer in self._tallies:
                tally = self._tallies[producer]
            else:
                rounds = producer._rounds
                tally = None
                if rounds is not None:  # sqs, emf: counted here, handed on each round
                    tally = ApiCallTally(
                        rounds,
                        lambda key: self._series_of(producer, key),
                        producer._clock,
                        on_error=self._report,
                    )
                    rounds.add_collector(tally)
                self._tallies[producer] = tally
            self._last = (producer, tally)
        return tally

    def _series_of(self, producer: MetricProducer, key: CallKey) -> CallSeries:
        duration, successful, retry_count = self._handles_of(producer, key)
        return duration._series, successful._series, retry_count._series, 0.0 if key[2] else 1.0

    def _handles_of(self, producer: MetricProducer, key: CallKey) -> tuple[SeriesHandle, SeriesHandle, SeriesHandle]:
        # key[0]: the client's ServiceModel (cheap to read on the hot path); its ServiceId names the series, so
        # every client of a service shares them.
        service_id, operation, error_type = str(getattr(key[0], "service_id", key[0])), key[1], key[2]
        cache_key = (producer, service_id, operation, error_type)
        handles = self._handles.get(cache_key)
        if handles is None:
            handles = self._handles_for(producer, service_id, operation, error_type)
            if len(self._handles) >= _MAX_CACHED_HANDLES:
                self._handles.clear()
            self._handles[cache_key] = handles
        return handles

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


def _measured_call(instrumentation: Boto3Instrumentation, base: Any) -> Callable[..., Any]:
    """A measured client's ``_make_api_call``: ``base._make_api_call`` (looked up at each call), timed and counted.

    The hot path, flat on purpose: inside botocore's pipeline every Python call and attribute read here costs
    several times what it costs in a tight loop (cold caches), and the budget is 5 µs per API call.
    """
    perf_counter = time.perf_counter

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        if not instrumentation._active:
            return base._make_api_call(self, operation_name, api_params)
        start = perf_counter()
        try:
            result = base._make_api_call(self, operation_name, api_params)
        except Exception as exc:
            instrumentation.failed(self, operation_name, start, exc)
            raise
        try:
            elapsed_ms = ((perf_counter() - start) * _TENTHS_OF_MS + 0.5) // 1.0 / 10.0  # no int(): a call less
            model = self._service_model
            if operation_name in _PIPELINE_NAMES and (model.service_id, operation_name) in PIPELINE_OPERATIONS:
                return result
            try:
                retries = result["ResponseMetadata"]["RetryAttempts"]
            except (KeyError, TypeError):  # a stubbed response (botocore's Stubber) has none
                retries = 0
            producer = instrumentation._producer or default_producer()
            last = instrumentation._last
            tally = last[1] if last[0] is producer else instrumentation._tally_for(producer)
            if tally is not None:  # ApiCallTally.add, inline
                pending = tally.pending
                first = not pending
                pending.append((model, operation_name, None, tally.clock(), elapsed_ms, retries))
                if first or len(pending) >= MAX_PENDING_CALLS:
                    tally.noted(first)
            else:
                instrumentation.record_now(producer, (model, operation_name, None), elapsed_ms, retries)
        except Exception as exc:
            instrumentation._report(exc)
        return result

    return _make_api_call


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
    botocore_session = _botocore_session(session)
    with _registry_lock:
        existing = _registry.get(id(botocore_session))
        if existing is not None and existing.active:
            return existing
        instrumentation = Boto3Instrumentation(botocore_session, producer=producer, namespace=namespace)
        _registry[id(botocore_session)] = instrumentation
    instrumentation.attach_session(botocore_session.get_component("event_emitter"))  # clients made from now on
    # Clients made before: each holds the session's data loader (the one link from a client back to its session).
    loader = botocore_session.get_component("data_loader")
    for candidate in gc.get_objects():
        try:
            if isinstance(candidate, BaseClient) and getattr(candidate, "_loader", None) is loader:
                instrumentation.attach_client(candidate)
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

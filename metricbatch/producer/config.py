"""A producer's settings, read once from explicit arguments and the environment into a frozen dataclass.

The mode says where metrics go: ``sqs`` (the pipeline's queue), ``emf`` (Embedded Metric Format lines on stdout),
``memory`` (kept in the process for tests) or ``off`` (validated and discarded). ``mode=`` beats
``METRICBATCH_MODE``, which beats the default: ``sqs`` when a queue URL is configured. A host with no usable
setting is not an error in the caller: the mode becomes ``off`` and ``mode_reason`` says why. Likewise a host without
a (valid) ``METRICBATCH_NAMESPACE``: metrics sent without ``namespace=`` go to ``DEFAULT_NAMESPACE`` and
``namespace_reason`` says why (an empty or invalid ``namespace=`` passed in code still raises at the call).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from metricbatch import env as env_names
from metricbatch.exceptions import ConfigurationError, InvalidMetricError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES
from metricbatch.validation import Dimensions, check_dimensions, parse_dimension_list

logger = logging.getLogger(__name__)

SQS: Final = "sqs"
EMF: Final = "emf"
MEMORY: Final = "memory"
OFF: Final = "off"
MODES: Final = (SQS, EMF, MEMORY, OFF)

# Distinct values (per series and bucket) held at most, buffered plus being sent: the memory bound (~100 bytes
# each). A repeated value only raises a count; a new value beyond the bound is dropped (and counted).
DEFAULT_MAX_BUFFERED = 100_000
# A round every 5 s (sooner when a quarter of the bound is pending): merged histograms make a longer interval cheap
# in memory, it sends a fifth of the SQS requests of 1 s, and the batcher's 30 s window dominates latency anyway.
DEFAULT_FLUSH_INTERVAL_SECONDS = 5.0
# Periodic drop lines at most this often (each carries the count since the previous line and the running total).
DROP_LOG_INTERVAL_SECONDS = 10.0
# While SQS refuses the queue for a reason no retry fixes (it does not exist, access denied, ...), the held metrics
# are offered to it again this often: one SendMessageBatch per process every 30 s, and recovery within 30 s of a fix.
QUEUE_RETRY_INTERVAL_SECONDS = 30.0

NO_DESTINATION = (
    f"no {env_names.QUEUE_URL} and no {env_names.MODE}: metrics are validated and discarded "
    f"(set {env_names.QUEUE_URL} to send them to the pipeline, or {env_names.MODE}=emf|memory|off to choose)"
)


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """A producer's settings; explicit arguments beat the environment."""

    queue_url: str | None = None
    # A sharded deployment's queues in shard order; each series goes to one of them (metricbatch.shards).
    # Empty: ``queue_url`` alone. With one or more, ``queue_url`` is the first.
    queue_urls: tuple[str, ...] = ()
    namespace: str | None = None
    mode: str = SQS
    mode_reason: str = ""  # why ``mode`` was chosen for you (a setting is missing or wrong); "" when configured
    namespace_reason: str = ""  # why ``namespace`` is DEFAULT_NAMESPACE (no or an invalid variable); "" when configured
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_SECONDS
    max_buffered: int = DEFAULT_MAX_BUFFERED
    max_message_bytes: int = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES
    send_attempts: int = 4
    fallback: bool = True
    exit_flush_timeout: float = 5.0
    handle_sigterm: bool = True
    drop_log_interval: float = DROP_LOG_INTERVAL_SECONDS
    queue_retry_interval: float = QUEUE_RETRY_INTERVAL_SECONDS
    # On every metric of the producer (a call's own dimensions win on a clash); validated once, here.
    default_dimensions: Dimensions = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> ProducerConfig:
        """Settings from explicit arguments, then the environment.

        Raises:
            ConfigurationError: an explicit argument is wrong (``mode=`` not a mode, ``max_buffered`` below 1).
                A missing or wrong environment variable never raises: the mode becomes ``off``, with a reason.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "queue_url": env.get(env_names.QUEUE_URL) or None,
            "queue_urls": _url_list(env.get(env_names.QUEUE_URLS, "")),
            "namespace": env.get(env_names.NAMESPACE) or None,
        }
        round_seconds = _round_seconds(env.get(env_names.ROUND_SECONDS))
        if round_seconds is not None:
            values["flush_interval"] = round_seconds
        if explicit.get("queue_url") is not None and explicit.get("queue_urls") is None:
            values["queue_urls"] = ()  # an explicit single queue beats the environment's shard list
        values.update({k: v for k, v in explicit.items() if v is not None})
        if "default_dimensions" in values:
            values["default_dimensions"] = _explicit_default_dimensions(values["default_dimensions"])
        else:
            values["default_dimensions"] = default_dimensions_from_env(env.get(env_names.DEFAULT_DIMENSIONS))
        values["queue_urls"] = tuple(values["queue_urls"])
        if values["queue_urls"]:
            values["queue_url"] = values["queue_urls"][0]
        if float(values.get("flush_interval", DEFAULT_FLUSH_INTERVAL_SECONDS)) <= 0:
            raise ConfigurationError(f"flush_interval must be above 0 s, got {values['flush_interval']!r}")
        mode = values.pop("mode", None)
        if mode is not None and mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if int(values.get("max_buffered", DEFAULT_MAX_BUFFERED)) < 1:
            raise ConfigurationError(f"max_buffered must be at least 1, got {values['max_buffered']!r}")
        values["mode"], values["mode_reason"] = _choose_mode(mode, env.get(env_names.MODE), values.get("queue_url"))
        if explicit.get("namespace") is None:  # given in code, it is validated (and rejected) at each call instead
            values["namespace"], values["namespace_reason"] = _choose_namespace(env.get(env_names.NAMESPACE))
        return cls(**values)

    @property
    def minute_aligned(self) -> bool:
        """Rounds on wall-clock minute boundaries, each taking only the finished minutes (a multiple of 60 s)."""
        return self.flush_interval >= 60 and self.flush_interval % 60 == 0

    @property
    def shard_urls(self) -> tuple[str, ...]:
        """The queues series are routed to: ``queue_urls``, else ``queue_url`` alone."""
        return self.queue_urls or ((self.queue_url,) if self.queue_url else ())

    @property
    def wake_threshold(self) -> int:
        """Pending metrics (or distinct values) that wake the sender before its interval: a quarter of the bound."""
        return max(1, self.max_buffered // 4)

    def turned_off(self, reason: str) -> ProducerConfig:
        """These settings in mode ``off``, chosen for the given reason (a setting the mode needs is missing)."""
        return replace(self, mode=OFF, mode_reason=reason)


def _explicit_default_dimensions(dimensions: object) -> Dimensions:
    try:
        return check_dimensions(dimensions)
    except InvalidMetricError as exc:
        raise ConfigurationError(f"default_dimensions: {exc}") from None


_reported: set[str] = set()
_reported_lock = threading.Lock()


def default_dimensions_from_env(text: str | None) -> Dimensions:
    """METRICBATCH_DEFAULT_DIMENSIONS parsed once; a malformed value is one ERROR line (once per value and process)
    and no default dimensions, never an exception in the caller."""
    if not text:
        return ()
    try:
        return parse_dimension_list(text)
    except InvalidMetricError as exc:
        with _reported_lock:
            fresh = text not in _reported
            _reported.add(text)
        if fresh:
            logger.error(
                "metricbatch: %s=%r is ignored (expected Name=value,Name2=value2): %s",
                env_names.DEFAULT_DIMENSIONS,
                text,
                exc,
            )
        return ()


def _url_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _round_seconds(raw: str | None) -> float | None:
    """METRICBATCH_ROUND_SECONDS; a wrong value is logged and ignored (configuration never raises in the caller)."""
    if raw is None or not raw.strip():
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        logger.warning(
            "%s=%r is not a positive number of seconds; using the default round", env_names.ROUND_SECONDS, raw
        )
        return None
    return seconds


def _choose_mode(explicit: str | None, from_env: str | None, queue_url: str | None) -> tuple[str, str]:
    """(mode, reason it was chosen for you): explicit, else METRICBATCH_MODE, else sqs with a queue URL."""
    if explicit is not None:
        mode, source = explicit, f"mode={explicit!r}"
    elif from_env is not None and from_env.strip():
        mode, source = from_env.strip().lower(), f"{env_names.MODE}={from_env!r}"
        if mode not in MODES:
            return OFF, f"{source} is not one of {', '.join(MODES)}: metrics are validated and discarded"
    elif queue_url:
        return SQS, ""
    else:
        return OFF, NO_DESTINATION
    if mode == SQS and not queue_url:
        return OFF, (
            f"{source} but no queue URL: metrics are validated and discarded "
            f"(pass queue_url= or set {env_names.QUEUE_URL})"
        )
    return mode, ""


def _choose_namespace(from_env: str | None) -> tuple[str, str]:
    """(default namespace, reason it was chosen for you): METRICBATCH_NAMESPACE when valid, else DEFAULT_NAMESPACE."""
    from metricbatch.exceptions import InvalidMetricError
    from metricbatch.validation import check_namespace

    fallback = f"metrics sent without namespace= go to namespace {env_names.DEFAULT_NAMESPACE!r}"
    if not from_env:
        return env_names.DEFAULT_NAMESPACE, f"no {env_names.NAMESPACE} and no namespace=: {fallback}"
    try:
        return check_namespace(from_env), ""
    except InvalidMetricError as exc:
        return (
            env_names.DEFAULT_NAMESPACE,
            f"{env_names.NAMESPACE}={from_env!r} is not a valid namespace ({exc}): {fallback}",
        )

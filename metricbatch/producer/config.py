"""A producer's settings, read once from explicit arguments and the environment into a frozen dataclass.

The mode says where metrics go: ``sqs`` (the pipeline's queue), ``emf`` (Embedded Metric Format lines on stdout),
``memory`` (kept in the process for tests) or ``off`` (validated and discarded). ``mode=`` beats
``METRICBATCH_MODE``, which beats the default: ``sqs`` when a queue URL is configured. A host with no usable
setting is not an error in the caller: the mode becomes ``off`` and ``mode_reason`` says why. Likewise a host without
a (valid) ``METRICBATCH_NAMESPACE``: metrics sent without ``namespace=`` go to ``DEFAULT_NAMESPACE`` and
``namespace_reason`` says why (an empty or invalid ``namespace=`` passed in code still raises at the call).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from metricbatch import env as env_names
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES

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
            "namespace": env.get(env_names.NAMESPACE) or None,
        }
        values.update({k: v for k, v in explicit.items() if v is not None})
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
    def wake_threshold(self) -> int:
        """Pending metrics (or distinct values) that wake the sender before its interval: a quarter of the bound."""
        return max(1, self.max_buffered // 4)

    def turned_off(self, reason: str) -> ProducerConfig:
        """These settings in mode ``off``, chosen for the given reason (a setting the mode needs is missing)."""
        return replace(self, mode=OFF, mode_reason=reason)


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

"""A producer's settings, read once from explicit arguments and the environment into a frozen dataclass."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metricbatch import env as env_names
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, SQS_MESSAGE_HEADROOM_BYTES

# Distinct values (per series and bucket) held at most, buffered plus being sent: the memory bound (~100 bytes
# each). A repeated value only raises a count; a new value beyond the bound is dropped (and counted).
DEFAULT_MAX_BUFFERED = 100_000
# A round every 5 s (sooner when a quarter of the bound is pending): merged histograms make a longer interval cheap
# in memory, it sends a fifth of the SQS requests of 1 s, and the batcher's 30 s window dominates latency anyway.
DEFAULT_FLUSH_INTERVAL_SECONDS = 5.0
# Periodic drop lines at most this often (each carries the count since the previous line and the running total).
DROP_LOG_INTERVAL_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """A producer's settings; explicit arguments beat the environment."""

    queue_url: str
    namespace: str | None = None
    flush_interval: float = DEFAULT_FLUSH_INTERVAL_SECONDS
    max_buffered: int = DEFAULT_MAX_BUFFERED
    max_message_bytes: int = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES
    send_attempts: int = 4
    fallback: bool = True
    exit_flush_timeout: float = 5.0
    handle_sigterm: bool = True
    drop_log_interval: float = DROP_LOG_INTERVAL_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> ProducerConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "queue_url": env.get(env_names.QUEUE_URL),
            "namespace": env.get(env_names.NAMESPACE) or None,
        }
        values.update({k: v for k, v in explicit.items() if v is not None})
        if not values.get("queue_url"):
            raise ConfigurationError(f"no queue URL: pass queue_url= or set {env_names.QUEUE_URL}")
        if int(values.get("max_buffered", DEFAULT_MAX_BUFFERED)) < 1:
            raise ConfigurationError(f"max_buffered must be at least 1, got {values['max_buffered']!r}")
        return cls(**values)

    @property
    def wake_threshold(self) -> int:
        """Pending metrics (or distinct values) that wake the sender before its interval: a quarter of the bound."""
        return max(1, self.max_buffered // 4)

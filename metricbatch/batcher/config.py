"""The batcher's settings, read once from the environment (explicit arguments win)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from metricbatch.env import ALLOWED_NAMESPACES, DLQ_URL, QUEUE_URL

# A re-queued message carries "attempt"; past this many it goes to the DLQ instead of cycling through the queue.
MAX_REQUEUE_ATTEMPTS: Final = 5
# Time kept back from the invocation's deadline for re-queueing, setting aside and answering the event.
RESERVE_SECONDS: Final = 2.0


@dataclass(frozen=True, kw_only=True)
class BatcherConfig:
    """The handler's settings.

    Attributes:
        dlq_url: where invalid or unpublishable data is set aside (``METRICBATCH_DLQ_URL``).
        queue_url: where unsent datums are re-queued (``METRICBATCH_QUEUE_URL``); default: the record's source queue.
        allowed_namespaces: namespace prefixes accepted (``METRICBATCH_ALLOWED_NAMESPACES``); empty: any.
        max_requeue_attempts: re-queues of the same data before it goes to the DLQ instead.
        reserve_seconds: time kept back from the deadline for re-queueing and the response.
    """

    dlq_url: str | None = None
    queue_url: str | None = None
    allowed_namespaces: tuple[str, ...] = ()
    max_requeue_attempts: int = MAX_REQUEUE_ATTEMPTS
    reserve_seconds: float = RESERVE_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BatcherConfig:
        env = os.environ if environ is None else environ
        allowed = tuple(p.strip() for p in env.get(ALLOWED_NAMESPACES, "").split(",") if p.strip())
        values: dict[str, Any] = {
            "dlq_url": env.get(DLQ_URL) or None,
            "queue_url": env.get(QUEUE_URL) or None,
            "allowed_namespaces": allowed,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

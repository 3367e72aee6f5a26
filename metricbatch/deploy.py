"""Per-environment pipeline settings, shared by the CDK stacks (infra/) and the embedded local stack.

One frozen dataclass per environment; `app.py` may override fields from CDK context. Nothing here imports CDK,
so the local runtime creates its queue and DLQ with exactly the settings the dev stack deploys.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from metricbatch.env import SELF_METRICS_NAMESPACE
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import (
    MAX_SQS_BATCH_SIZE,
    VISIBILITY_TIMEOUT_FACTOR,
    event_source_problems,
)

STACK_NAME_PREFIX = "MetricBatching"
# The scale setting (``-c shards=N``, N > 1; see README "Deploy: big fleets"): N queues, each drained by its own
# event source mapping; producers route each series to one queue by a hash of its identity (metricbatch.shards) and
# send one partial aggregate per series-minute (a minute-aligned round), so a series-minute's parts meet in one
# shard's invocation. Unless given too, these replace the single queue's batch, window and concurrency: the batch is
# closed by Lambda's 6 MB payload, the window covers the burst after each minute boundary (clock skew, send time),
# and the fewest concurrent batches (2, the event source minimum) split a burst the least.
MAX_SHARDS = 64  # dashboard cost math sums 4 metrics per queue; CloudWatch allows 500 per expression
FLEET_PRODUCER_ROUND_SECONDS = 60
FLEET_BATCH_SIZE = MAX_SQS_BATCH_SIZE
FLEET_BATCHING_WINDOW_SECONDS = 20
FLEET_MAX_CONCURRENCY = 2
DEFAULT_PRODUCER_ROUND_SECONDS = 5  # ProducerConfig's default round: one queue keeps it
# encryption_key: SQS-owned keys (SSE-SQS), a customer managed KMS key the stack creates, or an existing key's ARN.
ENCRYPTION_SQS_MANAGED = "sqs-managed"
ENCRYPTION_KMS = "kms"
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Everything that differs between environments of the pipeline."""

    name: str
    batch_size: int = 20
    batching_window_seconds: int = 30
    max_concurrency: int = 5  # event source ScalingConfig; PutMetricData's 500 TPS is shared account-wide
    function_timeout_seconds: int = 60
    function_memory_mb: int = 256
    max_receive_count: int = 5  # AWS suggests 5 for Lambda event sources
    queue_retention_days: int = 4
    dlq_retention_days: int = 14
    allowed_namespaces: tuple[str, ...] = ()  # namespace prefixes; empty = any non-AWS/ namespace
    log_retention_days: int = 30
    retain_on_delete: bool = False
    alarm_email: str | None = None
    alarm_oldest_message_age_seconds: int = 300
    alarm_dlq_messages: int = 1
    alarm_batcher_errors: int = 1
    alarm_batcher_throttles: int = 1
    alarm_metrics_rejected: int = 1
    self_metrics_namespace: str = SELF_METRICS_NAMESPACE
    tags: dict[str, str] = field(default_factory=dict)
    # Queues, DLQ and the batcher's log group: "sqs-managed" | "kms" (a new key, rotated yearly) | a KMS key ARN.
    encryption_key: str = ENCRYPTION_SQS_MANAGED
    # The scale setting: queues (shards) series are spread over; 1 = today's single queue. See FLEET_* above.
    shards: int = 1

    def __post_init__(self) -> None:
        for problem in event_source_problems(self.batch_size, self.batching_window_seconds):
            raise ConfigurationError(f"batch_size / batching_window_seconds: {problem}")
        if self.max_receive_count < 1:
            raise ConfigurationError("max_receive_count must be at least 1")
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ConfigurationError(f"shards {self.shards} outside 1..{MAX_SHARDS}")
        if self.max_concurrency < 2:
            raise ConfigurationError("max_concurrency must be at least 2 (the event source mapping minimum)")
        if self.encryption_key not in {ENCRYPTION_SQS_MANAGED, ENCRYPTION_KMS} and not _KMS_KEY_ARN.match(
            self.encryption_key
        ):
            raise ConfigurationError(
                f"encryption_key {self.encryption_key!r} is none of {ENCRYPTION_SQS_MANAGED!r}, {ENCRYPTION_KMS!r} "
                "or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID: IAM grants and CloudWatch Logs need the key, "
                "not an alias)"
            )

    @property
    def stack_name(self) -> str:
        return f"{STACK_NAME_PREFIX}-{self.name}"

    @property
    def producer_round_seconds(self) -> int:
        """The round producers should use (METRICBATCH_ROUND_SECONDS): minute-aligned when sharded."""
        return FLEET_PRODUCER_ROUND_SECONDS if self.shards > 1 else DEFAULT_PRODUCER_ROUND_SECONDS

    def shard_ids(self) -> tuple[str, ...]:
        """Construct ids of the shard queues: shard 0 keeps the single queue's id, so turning shards on (or off)
        never replaces the queue producers already use."""
        return tuple("Queue" if index == 0 else f"Queue{index}" for index in range(self.shards))

    @property
    def visibility_timeout_seconds(self) -> int:
        # AWS guidance: at least 6x the function timeout, plus the batching window the records wait in.
        return VISIBILITY_TIMEOUT_FACTOR * self.function_timeout_seconds + self.batching_window_seconds

    @property
    def queue_retention_seconds(self) -> int:
        return self.queue_retention_days * 24 * 3600

    @property
    def dlq_retention_seconds(self) -> int:
        return self.dlq_retention_days * 24 * 3600

    def with_overrides(self, overrides: dict[str, Any]) -> PipelineSettings:
        """Return a copy with fields replaced, converting context strings to the field's type."""
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for key, raw in overrides.items():
            if key not in known or key == "name":
                raise ConfigurationError(f"unknown setting {key!r}; known: {sorted(known)}")
            current = getattr(self, key)
            changes[key] = _coerce(raw, current)
        if changes.get("shards", 1) > 1:
            for key, value in FLEET_DEFAULTS.items():
                changes.setdefault(key, value)
        return dataclasses.replace(self, **changes)


FLEET_DEFAULTS: dict[str, int] = {
    "batch_size": FLEET_BATCH_SIZE,
    "batching_window_seconds": FLEET_BATCHING_WINDOW_SECONDS,
    "max_concurrency": FLEET_MAX_CONCURRENCY,
}


def _coerce(raw: Any, current: Any) -> Any:
    if not isinstance(raw, str):
        return tuple(raw) if isinstance(current, tuple) and isinstance(raw, list) else raw
    if isinstance(current, bool):
        return raw.lower() in {"1", "true", "yes"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, tuple):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    return raw


ENVIRONMENTS: dict[str, PipelineSettings] = {
    "dev": PipelineSettings(name="dev", max_concurrency=2, log_retention_days=7, queue_retention_days=4),
    "staging": PipelineSettings(name="staging", max_concurrency=5, log_retention_days=30),
    "prod": PipelineSettings(
        name="prod",
        max_concurrency=20,
        log_retention_days=90,
        queue_retention_days=14,
        retain_on_delete=True,
        alarm_oldest_message_age_seconds=180,
    ),
}


def settings_for(env: str) -> PipelineSettings:
    """The settings of one named environment (dev, staging or prod)."""
    try:
        return ENVIRONMENTS[env]
    except KeyError:
        raise ConfigurationError(f"unknown environment {env!r}; choose one of {sorted(ENVIRONMENTS)}") from None

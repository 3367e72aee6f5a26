"""The cost model: dollars for the calls and requests a design makes (prices in constants.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from metricbatch.constants import (
    PRICE_LAMBDA_PER_GB_SECOND_ARM64,
    PRICE_LAMBDA_PER_REQUEST,
    PRICE_PUT_METRIC_DATA_PER_REQUEST,
    PRICE_SQS_PER_REQUEST,
)

OLD_BATCHER_DATUMS_PER_CALL = 20  # the obsolete pre-2022 PutMetricData limit the TypeScript batcher used


@dataclass(frozen=True)
class DesignCost:
    """What one design makes for a workload, and what it costs."""

    design: str
    put_metric_data_calls: float
    sqs_requests: float = 0.0  # billed requests (64 KiB chunks), send + receive + delete
    lambda_invocations: float = 0.0
    lambda_gb_seconds: float = 0.0

    @property
    def put_metric_data_dollars(self) -> float:
        return self.put_metric_data_calls * PRICE_PUT_METRIC_DATA_PER_REQUEST

    @property
    def sqs_dollars(self) -> float:
        return self.sqs_requests * PRICE_SQS_PER_REQUEST

    @property
    def lambda_dollars(self) -> float:
        return (
            self.lambda_invocations * PRICE_LAMBDA_PER_REQUEST
            + self.lambda_gb_seconds * PRICE_LAMBDA_PER_GB_SECOND_ARM64
        )

    @property
    def dollars(self) -> float:
        return self.put_metric_data_dollars + self.sqs_dollars + self.lambda_dollars

    def scaled(self, factor: float) -> DesignCost:
        return DesignCost(
            design=self.design,
            put_metric_data_calls=self.put_metric_data_calls * factor,
            sqs_requests=self.sqs_requests * factor,
            lambda_invocations=self.lambda_invocations * factor,
            lambda_gb_seconds=self.lambda_gb_seconds * factor,
        )

    def as_dict(self) -> dict[str, float | str]:
        return {**asdict(self), "dollars": self.dollars}


def direct_cost(metrics: int) -> DesignCost:
    """One PutMetricData call per metric."""
    return DesignCost("direct", put_metric_data_calls=float(metrics))


def old_batcher_cost(metrics: int) -> DesignCost:
    """The in-process batcher with the obsolete 20-datum limit (at best: every call full)."""
    return DesignCost("old-batcher-20", put_metric_data_calls=float(math.ceil(metrics / OLD_BATCHER_DATUMS_PER_CALL)))


def gb_seconds(handler_seconds: float, memory_mb: int) -> float:
    return handler_seconds * memory_mb / 1024.0


def per_million(cost: DesignCost, metrics: int) -> DesignCost:
    return cost.scaled(1_000_000 / metrics) if metrics else cost

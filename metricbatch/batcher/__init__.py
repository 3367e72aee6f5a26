"""The batcher side: what the Lambda imports (``lambdas/batcher/handler.py`` re-exports ``batcher.handler``).

Nothing here imports the producer side, the CLI or the emulator.
"""

from __future__ import annotations

from metricbatch.batcher.batcher import BatcherConfig, BatchReport, MetricBatcher, RecentMessageIds

__all__ = ["BatchReport", "BatcherConfig", "MetricBatcher", "RecentMessageIds"]

"""Lambda entry of the batcher: SQS batch in, the fewest valid PutMetricData calls out.

Handler: ``lambdas/batcher/handler.handler``. The logic lives in the metricbatch package
(``metricbatch.batcher.handler``, ``metricbatch.batcher.batcher``); see DESIGN.md for the environment it reads.
"""

from __future__ import annotations

from metricbatch.batcher.handler import handler

__all__ = ["handler"]

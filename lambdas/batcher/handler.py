"""Lambda entry of the batcher: SQS batch in, the fewest valid PutMetricData calls out.

Handler: ``lambdas/batcher/handler.handler``. The logic lives in the metricbatch package
(``metricbatch.batcher_lambda``, ``metricbatch.batcher``); see DESIGN.md for the environment it reads.
"""

from __future__ import annotations

from metricbatch.batcher_lambda import handler

__all__ = ["handler"]

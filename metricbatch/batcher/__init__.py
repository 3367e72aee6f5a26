"""The batcher side: what the Lambda imports (``lambdas/batcher/handler.py`` re-exports ``batcher.handler``).

Nothing here imports the producer side, the CLI or the emulator. Modules: ``config`` (settings), ``collect``
(validating records), ``batcher`` (``MetricBatcher``: merge, publish, settle), ``settle`` (DLQ and re-queue),
``dedup`` (redelivered messages), ``self_metrics`` (the report and its names), ``processor`` (Powertools' batch
utility), ``handler`` (the Lambda function). Importing this package imports none of them.
"""

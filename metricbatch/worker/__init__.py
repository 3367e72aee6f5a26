"""The long-running batcher worker: a stand-in for Lambda's SQS event source mapping (``metricbatch poll``)."""

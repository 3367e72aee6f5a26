"""CloudWatch PutMetricData: lossless aggregation, packing into requests, publishing (batcher and fallback)."""

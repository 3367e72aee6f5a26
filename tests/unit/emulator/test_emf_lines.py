"""A function's stdout lines to CloudWatch metrics: only EMF documents count, whatever else the stream holds."""

from __future__ import annotations

import json
from typing import Any

from metricbatch.emulator.emf import publish_emf_lines


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def put_metric_data(self, **params: Any) -> None:
        self.requests.append(params)


def test_only_emf_documents_become_metrics() -> None:
    emf = {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {"Namespace": "MetricBatch", "Dimensions": [["service"]],
                 "Metrics": [{"Name": "MetricsPublished", "Unit": "Count"}, {"Name": "PutMetricDataCalls"}]}
            ],
        },
        "service": "metricbatch-local",
        "MetricsPublished": 1202,
        "PutMetricDataCalls": [3, 4],
    }  # fmt: skip
    lines = [
        "START RequestId: 1 Version: $LATEST",
        json.dumps({"level": "INFO", "message": "batch done", "_aws": "not emf"}),
        json.dumps(emf),
        '{"_aws": broken json',
        "",
    ]
    cloudwatch = RecordingCloudWatch()
    assert publish_emf_lines(cloudwatch, lines) == 1
    (request,) = cloudwatch.requests
    assert request["Namespace"] == "MetricBatch"
    published, calls = request["MetricData"]
    assert published["MetricName"] == "MetricsPublished" and published["Values"] == [1202.0]
    assert published["Dimensions"] == [{"Name": "service", "Value": "metricbatch-local"}]
    assert published["Unit"] == "Count" and published["Timestamp"] == 1_700_000_000
    assert calls["Values"] == [3.0, 4.0] and calls["Unit"] == "None"

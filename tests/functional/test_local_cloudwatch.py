"""The local CloudWatch answers statistics as the real one does, or says plainly that it cannot."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from functional_support import unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

STATISTICS = ["Sum", "SampleCount", "Minimum", "Maximum", "Average"]


def _put(pipeline: LocalPipeline, namespace: str, *datums: dict[str, Any]) -> None:
    now = time.time()
    pipeline.cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": "Latency", "Unit": "Milliseconds", "Timestamp": now, **d} for d in datums],
    )


def _statistics(pipeline: LocalPipeline, namespace: str, **statistics: list[str]) -> dict[str, float]:
    points = pipeline.cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="Latency",
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=10),
        Period=86400,
        **(statistics or {"Statistics": STATISTICS}),
    )["Datapoints"]
    assert len(points) == 1, points
    return {k: v for k, v in points[0].items() if k in STATISTICS}


def test_fractional_counts_give_the_sums_and_counts_cloudwatch_computes(clean_pipeline: LocalPipeline) -> None:
    # GIVEN values [1, 2] with counts [1.5, 2] (a producer's sampled or weighted data)
    namespace = unique_namespace("Stats")
    _put(clean_pipeline, namespace, {"Values": [1.0, 2.0], "Counts": [1.5, 2.0]})
    # WHEN reading the statistics back
    stats = _statistics(clean_pipeline, namespace)
    # THEN they are CloudWatch's: sum of value x count, sum of counts
    assert stats == {"Sum": 5.5, "SampleCount": 3.5, "Minimum": 1.0, "Maximum": 2.0, "Average": 5.5 / 3.5}


def test_values_counts_single_values_and_statistic_sets_add_up(clean_pipeline: LocalPipeline) -> None:
    namespace = unique_namespace("Stats")
    _put(
        clean_pipeline,
        namespace,
        {"Values": [10.0, 20.0, 30.0], "Counts": [3.0, 1.0, 0.0]},  # a value counted 0 times is no sample
        {"Values": [0.5]},
        {"Value": 7.0},
        {"StatisticValues": {"SampleCount": 2.0, "Sum": 9.0, "Minimum": 4.0, "Maximum": 5.0}},
    )
    stats = _statistics(clean_pipeline, namespace)
    assert stats["Sum"] == 30.0 + 20.0 + 0.5 + 7.0 + 9.0
    assert stats["SampleCount"] == 4.0 + 1.0 + 1.0 + 2.0
    assert (stats["Minimum"], stats["Maximum"]) == (0.5, 20.0)


def test_get_metric_data_reads_fractional_counts_too(clean_pipeline: LocalPipeline) -> None:
    namespace = unique_namespace("Stats")
    _put(clean_pipeline, namespace, {"Values": [4.0], "Counts": [0.25]})
    result = clean_pipeline.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"q{stat.lower()}",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": "Latency"},
                    "Period": 3600,
                    "Stat": stat,
                },
            }
            for stat in ("Sum", "SampleCount")
        ],
        StartTime=datetime.now(UTC) - timedelta(hours=2),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
    )["MetricDataResults"]
    assert {r["Id"]: sum(r["Values"]) for r in result} == {"qsum": 1.0, "qsamplecount": 0.25}


@pytest.mark.parametrize("request_kind", ["ExtendedStatistics", "GetMetricData p99"])
def test_percentile_queries_are_refused_with_a_message_not_a_500(
    clean_pipeline: LocalPipeline, request_kind: str
) -> None:
    namespace = unique_namespace("Stats")
    _put(clean_pipeline, namespace, {"Values": [1.0, 2.0, 3.0]})
    with pytest.raises(ClientError) as refused:
        if request_kind == "ExtendedStatistics":
            _statistics(clean_pipeline, namespace, ExtendedStatistics=["p99"])
        else:
            clean_pipeline.cloudwatch.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "p",
                        "MetricStat": {
                            "Metric": {"Namespace": namespace, "MetricName": "Latency"},
                            "Period": 60,
                            "Stat": "p99",
                        },
                    }
                ],
                StartTime=datetime.now(UTC) - timedelta(hours=1),
                EndTime=datetime.now(UTC) + timedelta(minutes=10),
            )
    response = refused.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "p99" in response["Error"]["Message"]
    assert "local CloudWatch" in response["Error"]["Message"]

"""The strict CloudWatch stand-in refuses what the real service refuses, so tests can see a bad request."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from metricbatch.emulator.strict_cloudwatch import CloudWatchRejection, validate_put_metric_data

from ..fakes import FakeCloudWatch

TINY = [2.0**-361, -(2.0**-361), 1e-200, 5e-324]


def _request(**datum: Any) -> dict[str, Any]:
    return {"Namespace": "Strict/Test", "MetricData": [{"MetricName": "Latency", "Timestamp": time.time(), **datum}]}


def _check(body: dict[str, Any]) -> None:
    raw = json.dumps(body)
    validate_put_metric_data(json.loads(raw), len(raw))


@pytest.mark.parametrize("tiny", TINY)
@pytest.mark.parametrize(
    "datum",
    [
        lambda v: {"Value": v},
        lambda v: {"Values": [1.0, v]},
        lambda v: {"Values": [1.0, 2.0], "Counts": [1.0, v]},
        lambda v: {"StatisticValues": {"SampleCount": 2.0, "Sum": 3.0, "Minimum": v, "Maximum": 3.0}},
    ],
    ids=["Value", "Values", "Counts", "StatisticValues"],
)
def test_non_zero_magnitudes_below_2_to_the_minus_360_are_rejected(datum: Any, tiny: float) -> None:
    with pytest.raises(CloudWatchRejection) as caught:
        _check(_request(**datum(tiny)))
    assert caught.value.code == "InvalidParameterValue"


@pytest.mark.parametrize("edge", [0.0, -0.0, 2.0**-360, -(2.0**-360), 2.0**360, -(2.0**360)])
def test_zero_and_the_edges_of_the_range_are_accepted(edge: float) -> None:
    _check(_request(Value=edge))
    _check(_request(Values=[1.0, edge], Counts=[1.0, abs(edge)]))


def test_the_fake_client_answers_a_tiny_value_with_invalid_parameter_value() -> None:
    cloudwatch = FakeCloudWatch()
    with pytest.raises(ClientError) as caught:
        cloudwatch.put_metric_data(**_request(Values=[1.0, 1e-200]))
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert cloudwatch.requests == []

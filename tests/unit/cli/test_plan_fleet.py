"""Issue 27: ``metricbatch plan`` models what decides PutMetricData for a fleet and recommends the scale setting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metricbatch.cli import main
from metricbatch.cli.costs import FleetInputs, fleet_plan, fleet_rates, floor_put_metric_data_per_second
from metricbatch.limits import PUT_METRIC_DATA_TPS_QUOTA


def _plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["plan", *argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


def test_big_fleet_gets_a_setting_within_2x_of_the_floor(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the fleet: 1,000,000 metrics/s over 200,000 series from 2,000 producers
    result = _plan_json(capsys, "--rate", "1000000", "--series", "200000", "--producers", "2000")
    floor = result["floor_put_metric_data_per_second"]
    recommended = result["recommended"]
    # THEN the floor is one datum per series-minute, 1,000 per call
    assert floor == pytest.approx(200_000 / 60 / 1000)
    # and the recommendation is within 2x of it, and within half the TPS quota
    assert recommended["put_metric_data_per_second"] <= 2 * floor
    assert recommended["put_metric_data_per_second"] <= 0.5 * PUT_METRIC_DATA_TPS_QUOTA
    assert recommended["shards"] > 1 and recommended["context"] == f"-c shards={recommended['shards']}"
    assert recommended["environment"]["METRICBATCH_ROUND_SECONDS"] == "60"
    # dollars: at most 2x the floor's PutMetricData cost plus the SQS and Lambda the setting needs
    monthly = recommended["monthly"]
    floor_dollars = result["fleet"]["floor_dollars_per_month"]
    assert recommended["dollars_per_month"] <= 2 * floor_dollars + monthly["sqs_dollars"] + monthly["lambda_dollars"]
    # and today's setting is no longer modelled over the quota (the old model said 1,013 calls/s)
    assert result["designs"]["metricbatch"]["put_metric_data_per_second"] < PUT_METRIC_DATA_TPS_QUOTA


@pytest.mark.parametrize(
    ("rate", "series", "producers"),
    [(1, 1, 1), (100, 50, 1), (1000, 1000, 5), (10_000, 10_000, 50), (100_000, 50_000, 500), (1e6, 200_000, 2000),
     (3e6, 500_000, 5000), (50_000, 200_000, 20)],
)  # fmt: skip
def test_the_recommendation_is_never_worse_than_today(rate: float, series: int, producers: int) -> None:
    for producers_per_series in (None, 1, 4, 10):
        fleet = fleet_plan(rate=rate, series=series, producers=producers, producers_per_series=producers_per_series)
        assert fleet.recommended.rates.monthly.dollars <= fleet.today.rates.monthly.dollars
        assert fleet.recommended.put_metric_data_per_second <= fleet.today.put_metric_data_per_second * 1.0001


def test_small_services_keep_the_short_round(capsys: pytest.CaptureFixture[str]) -> None:
    result = _plan_json(capsys, "--rate", "100", "--series", "50")
    assert result["recommended"]["shards"] == 1 and result["recommended"]["producer_round_seconds"] == 5
    assert main(["plan", "--rate", "100", "--series", "50"]) == 0
    assert "keep today's setting" in capsys.readouterr().out


def test_more_producers_per_series_need_more_shards() -> None:
    few = fleet_plan(rate=1e6, series=200_000, producers=2000, producers_per_series=2).recommended
    many = fleet_plan(rate=1e6, series=200_000, producers=2000, producers_per_series=4).recommended
    assert many.inputs.shards > few.inputs.shards


def test_the_round_decides_it_not_the_batch() -> None:
    # The measurement: bigger batches barely help with a 5 s round; a minute-aligned round does.
    base: dict[str, Any] = {"rate": 1e6, "series": 200_000, "producers": 2000}
    today = fleet_rates(FleetInputs(**base))
    bigger_batch = fleet_rates(FleetInputs(**base, batch_size=10_000, window_seconds=300))
    minute = fleet_rates(FleetInputs(**base, round_seconds=60, batch_size=10_000, window_seconds=20, shards=16))
    floor = floor_put_metric_data_per_second(200_000)
    assert bigger_batch.put_metric_data_per_second > 5 * floor
    assert minute.put_metric_data_per_second <= 2 * floor < today.put_metric_data_per_second / 10
    # with a minute round each producer sends one part per series-minute
    assert minute.parts_per_series_minute == pytest.approx(2, rel=0.01)

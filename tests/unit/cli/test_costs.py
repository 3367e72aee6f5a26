"""The cost model against hand-computed cases (us-east-1 list prices)."""

from __future__ import annotations

import pytest

from metricbatch.cli.costs import (
    DesignCost,
    direct_cost,
    floor_put_metric_data_calls,
    gb_seconds,
    log_bytes,
    old_batcher_cost,
    per_million,
)


def test_one_million_direct_calls_cost_ten_dollars() -> None:
    cost = direct_cost(1_000_000)
    assert cost.put_metric_data_calls == 1_000_000
    assert cost.dollars == pytest.approx(10.00)
    assert cost.sqs_dollars == 0 and cost.lambda_dollars == 0


@pytest.mark.parametrize(("metrics", "calls"), [(0, 0), (1, 1), (20, 1), (21, 2), (40, 2), (1_000_000, 50_000)])
def test_old_batcher_makes_one_call_per_20_metrics_rounded_up(metrics: int, calls: int) -> None:
    cost = old_batcher_cost(metrics)
    assert cost.put_metric_data_calls == calls
    assert cost.dollars == pytest.approx(calls * 0.01 / 1000)


def test_sqs_and_lambda_prices() -> None:
    cost = DesignCost("queue", put_metric_data_calls=1000, sqs_requests=3_000_000, lambda_invocations=500_000,
                      lambda_gb_seconds=10_000)  # fmt: skip
    assert cost.put_metric_data_dollars == pytest.approx(0.01)
    assert cost.sqs_dollars == pytest.approx(1.20)  # $0.40 per million
    assert cost.lambda_dollars == pytest.approx(0.10 + 10_000 * 0.0000133334)  # requests + arm64 GB-s
    assert cost.dollars == pytest.approx(0.01 + 1.20 + 0.10 + 0.133334)


def test_gb_seconds() -> None:
    assert gb_seconds(2.0, 512) == 1.0
    assert gb_seconds(0.5, 1024) == 0.5
    assert gb_seconds(1.0, 128) == 0.125


def test_per_million_scales_every_component() -> None:
    cost = DesignCost("queue", put_metric_data_calls=3, sqs_requests=10, lambda_invocations=2, lambda_gb_seconds=0.5)
    scaled = per_million(cost, 10_000)
    assert (scaled.put_metric_data_calls, scaled.sqs_requests, scaled.lambda_invocations) == (300, 1000, 200)
    assert scaled.lambda_gb_seconds == 50
    assert scaled.dollars == pytest.approx(cost.dollars * 100)
    assert per_million(cost, 0) is cost


def test_as_dict_includes_the_total() -> None:
    data = direct_cost(2000).as_dict()
    assert data["design"] == "direct"
    assert data["put_metric_data_calls"] == 2000
    assert data["dollars"] == pytest.approx(0.02)


def test_log_ingestion_counts_26_bytes_per_event_at_50_cents_per_gb() -> None:
    # 1,000,000 documents of 246 B: 246 MB of messages + 26 MB of event overhead = 272,000,000 B
    assert log_bytes(246_000_000, 1_000_000) == 272_000_000
    cost = DesignCost("emf-per-request", put_metric_data_calls=0, log_bytes=272_000_000)
    assert cost.logs_dollars == pytest.approx(272_000_000 / 2**30 * 0.50)  # $0.1267: ~$0.13 per million metrics
    assert cost.dollars == cost.logs_dollars
    assert cost.scaled(2).log_bytes == 544_000_000 and cost.as_dict()["log_bytes"] == 272_000_000


def test_the_floor_is_one_put_metric_data_per_1000_series_minutes() -> None:
    assert floor_put_metric_data_calls(100) == pytest.approx(0.1)
    assert floor_put_metric_data_calls(5_000) == pytest.approx(5.0)
    assert DesignCost("floor", put_metric_data_calls=floor_put_metric_data_calls(5_000)).dollars == pytest.approx(5e-5)

"""The cost and capacity model behind ``metricbatch plan``, checked against hand-computed cases."""

from __future__ import annotations

import json

import pytest

from metricbatch.cli import main
from metricbatch.costs import (
    SECONDS_PER_MONTH,
    DesignCost,
    PlanInputs,
    billed_sqs_requests,
    direct_cost,
    invocations_per_second,
    old_batcher_cost,
    plan,
)

MONTH = 730 * 3600  # 2,628,000 s


def test_month_is_730_hours() -> None:
    assert SECONDS_PER_MONTH == 2_628_000


def test_steady_1000_per_second_over_100_series() -> None:
    # GIVEN 1,000 metrics/s from one producer over 100 series, batch 20, window 30 s
    result = plan(PlanInputs(rate=1000, series=100))

    # THEN one message per second carries 1,000 metrics of 150 B
    assert result.metrics_per_message == 1000
    assert result.message_bytes == 150_000
    assert result.messages_per_second == 1.0
    # 30 messages arrive per window > 20: batches close at 20 messages, every 20 s
    assert result.invocations_per_second == pytest.approx(0.05)
    assert result.metrics_per_invocation == pytest.approx(20_000)
    # 100 series x ceil(200 values / 150) = 200 datums; 200*150 + 20,000*20 = 430,000 B: one request
    assert result.datums_per_invocation == 200
    assert result.put_metric_data_per_invocation == 1
    # handler 0.02 s + 20,000 x 5 us = 0.12 s; concurrency 0.05 x 0.12
    assert result.handler_seconds == pytest.approx(0.12)
    assert result.concurrency == pytest.approx(0.006)

    ours = result.design("metricbatch").monthly
    assert ours.put_metric_data_calls == pytest.approx(0.05 * MONTH)
    assert ours.put_metric_data_dollars == pytest.approx(1.314)
    # SQS: 150,000 B/s in 64 KiB chunks for send and for receive, deletes 0.1/s, idle polls 5/20 s
    chunks = 150_000 / 65_536
    assert ours.sqs_requests == pytest.approx((2 * chunks + 0.1 + 0.25) * MONTH)
    assert ours.lambda_invocations == pytest.approx(131_400)
    assert ours.lambda_gb_seconds == pytest.approx(0.006 * 0.25 * MONTH)
    assert ours.lambda_dollars == pytest.approx(131_400 * 0.2e-6 + 3942 * 0.0000133334)

    assert result.design("direct").monthly.dollars == pytest.approx(26_280.0)
    assert result.design("old-batcher-20").monthly.dollars == pytest.approx(1_314.0)
    naive = result.design("naive-queue").monthly
    assert naive.put_metric_data_calls == pytest.approx(50 * MONTH)
    assert naive.sqs_requests == pytest.approx((1000 + 200 + 0.25) * MONTH)
    assert result.storage_dollars_per_month == pytest.approx(30.0)
    # direct needs 1,000 TPS: over the 500 TPS quota, and the model says so
    assert result.design("direct").over_tps_quota
    assert any("direct" in w and "500 TPS" in w for w in result.warnings)
    assert not result.design("metricbatch").over_tps_quota


def test_trickle_gets_one_invocation_per_message() -> None:
    # 0.01 metrics/s: one metric per message, 0.3 messages per 30 s window < batch of 20
    result = plan(PlanInputs(rate=0.01, series=1))
    assert result.metrics_per_message == 1
    assert result.invocations_per_second == pytest.approx(0.01)
    assert result.put_metric_data_per_invocation == 1


def test_invocations_close_at_window_between_extremes() -> None:
    # 0.5 messages/s x 30 s = 15 < 20: one invocation per window
    assert invocations_per_second(0.5, 20, 30) == pytest.approx(1 / 30)
    assert invocations_per_second(2.0, 20, 30) == pytest.approx(0.1)
    assert invocations_per_second(0.0, 20, 30) == 0.0


def test_big_messages_hit_the_6_mb_payload() -> None:
    # 100,000 metrics/s: messages fill to (1 MiB - 4 KiB) // 150 B = 6,963 metrics = 1,044,450 B
    result = plan(PlanInputs(rate=100_000, series=1000))
    assert result.metrics_per_message == 6963
    assert result.messages_per_invocation == pytest.approx(6)  # 6,291,456 // 1,044,450
    assert any("6 MB" in w for w in result.warnings)


def test_batch_over_10_needs_a_window() -> None:
    result = plan(PlanInputs(rate=100, series=10, batch_size=20, window_seconds=0))
    assert any("window of at least 1 s" in w for w in result.warnings)
    assert not plan(PlanInputs(rate=100, series=10, batch_size=10, window_seconds=0)).warnings


def test_tps_quota_boundary() -> None:
    assert not plan(PlanInputs(rate=500, series=1)).design("direct").over_tps_quota
    assert plan(PlanInputs(rate=501, series=1)).design("direct").over_tps_quota


def test_many_series_need_more_requests() -> None:
    # 5,000 series and 20,000 metrics per invocation: 5,000 datums -> 5 requests of 1,000
    result = plan(PlanInputs(rate=1000, series=5000))
    assert result.datums_per_invocation == 5000
    assert result.put_metric_data_per_invocation == 5


def test_billed_sqs_requests_counts_64k_chunks() -> None:
    assert billed_sqs_requests(1, 1000) == 1
    assert billed_sqs_requests(1, 3 * 65_536) == 3


def test_plan_prices_a_month_with_the_cost_model() -> None:
    # The plan's monthly dollars are the cost model's (metricbatch.costs) for a month of the workload, not a second
    # copy of the arithmetic: one call per metric, and the old batcher's one call per 20.
    result = plan(PlanInputs(rate=1000, series=100))
    month = 1000 * MONTH
    assert result.design("direct").monthly.dollars == pytest.approx(direct_cost(month).dollars)
    assert result.design("old-batcher-20").monthly.dollars == pytest.approx(old_batcher_cost(month).dollars)
    ours = result.design("metricbatch")
    expected = DesignCost(
        "metricbatch",
        put_metric_data_calls=ours.put_metric_data_per_second * MONTH,
        sqs_requests=ours.sqs_billed_per_second * MONTH,
        lambda_invocations=ours.invocations_per_second * MONTH,
        lambda_gb_seconds=ours.gb_seconds_per_second * MONTH,
    )
    assert ours.monthly.dollars == pytest.approx(expected.dollars)
    assert ours.monthly.dollars < result.design("old-batcher-20").monthly.dollars


def test_plan_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "1000", "--series", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["designs"]["direct"]["monthly"]["dollars"] == pytest.approx(26_280.0)
    assert data["put_metric_data_tps_quota"] == 500
    assert data["storage_dollars_per_month"] == pytest.approx(30.0)


def test_plan_command_table_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "600", "--series", "10"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: direct" in out
    assert "batching does not change it" in out

"""The cost and capacity model behind ``metricbatch plan``, checked against hand-computed cases."""

from __future__ import annotations

import json

import pytest

from metricbatch.cli import main
from metricbatch.cli.costs import (
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

    # THEN a round every 5 s merges 5,000 metrics into 100 wire metrics: 100 x 150 B + 5,000 values x 8 B
    assert result.metrics_per_message == 5000
    assert result.message_bytes == 55_000
    assert result.messages_per_second == pytest.approx(0.2)
    # 6 messages arrive per window < 20: one invocation per window, 30,000 metrics each
    assert result.invocations_per_second == pytest.approx(1 / 30)
    assert result.metrics_per_invocation == pytest.approx(30_000)
    # 100 series x ceil(300 values / 150) = 200 datums; 200*150 + 30,000*20 = 630,000 B: one request
    assert result.datums_per_invocation == 200
    assert result.put_metric_data_per_invocation == 1
    # handler 0.02 s + 30,000 x 5 us = 0.17 s; concurrency 1/30 x 0.17
    assert result.handler_seconds == pytest.approx(0.17)
    assert result.concurrency == pytest.approx(0.17 / 30)

    ours = result.design("metricbatch").monthly
    assert ours.put_metric_data_calls == pytest.approx(MONTH / 30)
    # SQS: one SendMessageBatch per round (0.2/s, 11,000 B/s: under a chunk each), receives of 10 messages billed by
    # 64 KiB chunks of 11,000 B/s, deletes 0.02/s, idle polls 5/20 s
    assert ours.sqs_requests == pytest.approx((0.2 + 11_000 / 65_536 + 0.02 + 0.25) * MONTH)
    assert ours.lambda_invocations == pytest.approx(MONTH / 30)
    assert ours.lambda_gb_seconds == pytest.approx(0.17 / 30 * 0.25 * MONTH)

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
    # 1,000,000 metrics/s over 50,000 series: a round every 25,000 metrics, 25,000 wire metrics (every series new)
    # of 150 B + 25,000 values of 8 B = 3,950,000 B: 4 messages of 987,500 B
    result = plan(PlanInputs(rate=1_000_000, series=50_000))
    assert result.metrics_per_message == 6250
    assert result.message_bytes == 987_500
    assert result.messages_per_invocation == pytest.approx(6)  # 6,291,456 // 987,500
    assert any("6 MB" in w for w in result.warnings)


def test_merging_shrinks_messages_when_series_repeat() -> None:
    # the same 100,000 metrics/s over 10 series or over 100,000 series: far fewer bytes on the wire for few series
    few, many = plan(PlanInputs(rate=100_000, series=10)), plan(PlanInputs(rate=100_000, series=100_000))
    assert few.message_bytes == 10 * 150 + 25_000 * 8
    assert few.design("metricbatch").sqs_billed_per_second < many.design("metricbatch").sqs_billed_per_second


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
    # The plan's monthly dollars are the cost model's (metricbatch.cli.costs) for a month of the workload, not a second
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


def test_emf_designs_against_hand_worked_figures() -> None:
    # GIVEN 5,000 metrics/s over 100 series from one producer (a round every 5 s of 25,000 samples)
    result = plan(PlanInputs(rate=5000, series=100))
    # THEN one document per request: 5,000 documents/s x (246 B + 26 B of event overhead) = 1,360,000 B/s
    per_request = result.design("emf-per-request")
    assert per_request.log_bytes_per_second == pytest.approx(1_360_000)
    assert per_request.log_gb_per_month == pytest.approx(1_360_000 * MONTH / 2**30)  # 3,328.6 GB
    assert per_request.monthly.dollars == pytest.approx(1_360_000 * MONTH / 2**30 * 0.50)  # $1,664.31
    # AND emf mode: per round 100 series x ceil(250 samples / 100) = 300 documents; 300 x (235 + 26) B + 25,000
    # values x 7 B = 253,300 B; 0.2 rounds/s = 50,660 B/s
    aggregated = result.design("emf-aggregated")
    assert aggregated.log_bytes_per_second == pytest.approx(50_660)
    assert aggregated.monthly.dollars == pytest.approx(50_660 * MONTH / 2**30 * 0.50)  # $62.00
    assert aggregated.put_metric_data_per_second == 0 == per_request.monthly.sqs_requests
    # AND the queue is cheapest here ($5.41/month)
    assert result.cheapest_mode()[0] == "sqs"


def test_emf_mode_is_cheapest_for_a_trickle_and_the_plan_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN 1 metric/s over 10 series: every metric its own round (5 per 5 s round, 5 documents of 1 value)
    result = plan(PlanInputs(rate=1, series=10))
    # 5 x (235 + 26) + 5 x 7 = 1,340 B per round, a round per 5 s = 268 B/s; the queue's idle polls cost more
    assert result.design("emf-aggregated").log_bytes_per_second == pytest.approx(268)
    assert result.cheapest_mode()[0] == "emf"
    assert main(["plan", "--rate", "1", "--series", "10"]) == 0
    out = capsys.readouterr().out
    assert "5 EMF, a document per request" in out and "6 EMF aggregated (emf mode)" in out
    assert "log GB/month" in out
    assert "cheapest mode for this workload: emf" in out and "268.0 log bytes per metric" in out
    assert main(["plan", "--rate", "5000", "--series", "100"]) == 0
    assert "cheapest mode for this workload: sqs" in capsys.readouterr().out


def test_plan_json_carries_the_emf_designs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--rate", "5000", "--series", "100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["designs"]["emf-per-request"]["monthly"]["dollars"] == pytest.approx(1_360_000 * MONTH / 2**30 / 2)
    assert data["designs"]["emf-aggregated"]["log_gb_per_month"] == pytest.approx(50_660 * MONTH / 2**30)
    assert data["designs"]["metricbatch"]["log_gb_per_month"] == 0
    assert data["cheapest_mode"] == "sqs"

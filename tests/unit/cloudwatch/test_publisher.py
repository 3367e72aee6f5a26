"""CloudWatchPublisher: retries within a budget, bisection around a rejected datum, nothing published twice."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from metricbatch.aws.retry import backoff_delay, is_invalid_request, is_retryable
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.publisher import CloudWatchPublisher

from ..fakes import FakeClock, FakeCloudWatch, client_error, connection_error, throttling

NOW = time.time()


def datums(count: int, *, bad: int | None = None) -> list[Datum]:
    return [
        Datum("Shop", "Bad" if i == bad else f"M{i}", (), "None", 60, NOW - 5, [float(i)], [1.0]) for i in range(count)
    ]


def published_names(cloudwatch: FakeCloudWatch) -> Counter[str]:
    return Counter(d["MetricName"] for _, d in cloudwatch.datums())


def test_throttling_then_success_publishes_once_and_counts_retries() -> None:
    # GIVEN CloudWatch throttles twice, then accepts
    cloudwatch = FakeCloudWatch(errors=[throttling(), throttling()])
    clock = FakeClock(budget=60)
    publisher = CloudWatchPublisher(cloudwatch, time_left=clock.time_left, sleep=clock.sleep)
    batch = datums(5)
    # WHEN a request is published
    outcome = publisher.publish(pack_requests(batch))
    # THEN it lands exactly once, after two retries
    assert outcome.published == batch
    assert outcome.unsent == [] and outcome.rejected == []
    assert (outcome.calls, outcome.attempts, outcome.retries) == (1, 3, 2)
    assert len(cloudwatch.requests) == 1
    assert published_names(cloudwatch) == Counter({f"M{i}": 1 for i in range(5)})
    assert len(clock.sleeps) == 2
    assert "Throttling" in outcome.last_error


@pytest.mark.parametrize(
    "error",
    [
        client_error("InternalFailure", 500),
        client_error("ServiceUnavailable", 503),
        client_error("SomethingNew", 502),
        client_error("TooManyRequestsException", 429),
        connection_error(),
        ConnectionResetError("reset"),
        TimeoutError("read timeout"),
    ],
)
def test_transient_errors_are_retried(error: BaseException) -> None:
    assert is_retryable(error)
    cloudwatch = FakeCloudWatch(errors=[error])
    publisher = CloudWatchPublisher(cloudwatch, sleep=lambda _: None)
    outcome = publisher.publish(pack_requests(datums(3)))
    assert len(outcome.published) == 3
    assert outcome.retries == 1


def test_one_invalid_datum_is_isolated_by_bisection() -> None:
    # GIVEN 101 datums of which one (#37) CloudWatch refuses, failing any request that holds it
    def reject_bad(params: dict[str, Any]) -> BaseException | None:
        if any(d["MetricName"] == "Bad" for d in params["MetricData"]):
            return client_error("InvalidParameterValue", 400, message="The value for MetricData is invalid")
        return None

    cloudwatch = FakeCloudWatch(fail_with=reject_bad)
    publisher = CloudWatchPublisher(cloudwatch, sleep=lambda _: pytest.fail("an invalid request is not retried"))
    batch = datums(101, bad=37)
    # WHEN published
    outcome = publisher.publish(pack_requests(batch))
    # THEN every other datum lands exactly once and only the bad one is rejected, with the reason
    assert published_names(cloudwatch) == Counter({d.name: 1 for d in batch if d.name != "Bad"})
    assert sorted(d.name for d in outcome.published) == sorted(d.name for d in batch if d.name != "Bad")
    assert [(d.name, "InvalidParameterValue" in reason) for d, reason in outcome.rejected] == [("Bad", True)]
    assert outcome.unsent == []
    # AND bisection costs O(log n) calls, not one per datum
    assert outcome.calls <= 2 * 8
    assert cloudwatch.attempts <= 2 * 8 + 8


def test_every_datum_rejected_individually_when_all_are_bad() -> None:
    cloudwatch = FakeCloudWatch(always=client_error("InvalidParameterCombination", 400))
    outcome = CloudWatchPublisher(cloudwatch).publish(pack_requests(datums(4)))
    assert len(outcome.rejected) == 4
    assert outcome.published == [] and outcome.unsent == []
    assert is_invalid_request(client_error("InvalidParameterValue"))


@pytest.mark.parametrize("error", [client_error("AccessDenied", 403), client_error("UnrecognizedClientException")])
def test_non_retryable_errors_leave_the_request_unsent_after_one_attempt(error: BaseException) -> None:
    cloudwatch = FakeCloudWatch(always=error)
    sleeps: list[float] = []
    outcome = CloudWatchPublisher(cloudwatch, sleep=sleeps.append).publish(pack_requests(datums(3)))
    assert len(outcome.unsent) == 3
    assert outcome.published == [] and outcome.rejected == []
    assert outcome.attempts == 1
    assert sleeps == []
    assert cloudwatch.requests == []


def test_retries_stop_at_max_attempts() -> None:
    cloudwatch = FakeCloudWatch(always=throttling())
    outcome = CloudWatchPublisher(cloudwatch, max_attempts=4, sleep=lambda _: None).publish(pack_requests(datums(2)))
    assert len(outcome.unsent) == 2
    assert (outcome.attempts, outcome.retries, outcome.calls) == (4, 3, 0)


def test_exhausted_time_budget_leaves_data_unsent_without_sleeping_past_it() -> None:
    # GIVEN an invocation with 10 s left, 2 s of it reserved, and CloudWatch throttling without end
    cloudwatch = FakeCloudWatch(always=throttling())
    clock = FakeClock(budget=10.0)
    publisher = CloudWatchPublisher(
        cloudwatch,
        time_left=clock.time_left,
        reserve_seconds=2.0,
        max_attempts=1000,
        base_delay=0.5,
        max_delay=3.0,
        sleep=clock.sleep,
    )
    batch = datums(3)
    # WHEN published
    outcome = publisher.publish(pack_requests(batch))
    # THEN it gives up with everything unsent and never slept into the reserve
    assert outcome.unsent == batch
    assert outcome.published == []
    assert clock.now <= 10.0 - 2.0
    assert clock.sleeps, "it should have retried while there was time"
    assert outcome.attempts == len(clock.sleeps) + 1


def test_no_time_left_means_no_call_at_all() -> None:
    cloudwatch = FakeCloudWatch()
    publisher = CloudWatchPublisher(cloudwatch, time_left=lambda: 1.5, reserve_seconds=2.0)
    outcome = publisher.publish(pack_requests(datums(3)))
    assert len(outcome.unsent) == 3
    assert cloudwatch.attempts == 0


def test_backoff_delay_is_full_jitter_and_capped() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=0.1, cap=1.0, rng=rng) for attempt in range(1, 10) for _ in range(50)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert all(0 <= backoff_delay(1, base=0.1, cap=5.0, rng=rng) <= 0.2 for _ in range(100))
    assert max(delays) > 0.5  # capped, not stuck at the base


def test_a_value_cloudwatch_refuses_is_isolated_inside_a_merged_datum() -> None:
    # GIVEN one merged datum of 150 values from many producers, one of which CloudWatch refuses (any request holding
    # it fails, as the service does for a value outside its range)
    bad = 666.0

    def reject_bad(params: dict[str, Any]) -> BaseException | None:
        if any(bad in d.get("Values", [d.get("Value")]) for d in params["MetricData"]):
            return client_error("InvalidParameterValue", 400, message="The value 666 for parameter Values is invalid")
        return None

    values = [float(i) for i in range(149)] + [bad]
    merged = Datum("Shop", "Latency", (), "None", 60, NOW - 5, values, [2.0] * 150, sources=frozenset({0, 1, 2}))
    cloudwatch = FakeCloudWatch(fail_with=reject_bad)
    # WHEN published
    outcome = CloudWatchPublisher(cloudwatch, sleep=lambda _: None).publish(pack_requests([merged]))
    # THEN every other value lands exactly once and only the bad value is set aside
    assert sorted(v for v, _ in cloudwatch.samples("Latency")) == values[:-1]
    assert cloudwatch.sample_count("Latency") == 2 * 149
    assert [(d.values, d.counts) for d, _ in outcome.rejected] == [([bad], [2.0])]
    assert outcome.unsent == []
    # AND bisection stays logarithmic
    assert cloudwatch.attempts <= 2 * 9

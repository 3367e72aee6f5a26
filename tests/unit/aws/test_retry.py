"""aws.retry.attempts: the one retry loop (attempt count, jittered backoff, the time budget's reserve)."""

from __future__ import annotations

from metricbatch.aws.retry import RetryPolicy, attempts

from ..fakes import FakeClock

POLICY = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=1.0)


def test_attempts_stop_at_the_policy_maximum_and_sleep_only_between_them() -> None:
    clock = FakeClock(budget=1000)
    assert list(attempts(POLICY, sleep=clock.sleep)) == [0, 1, 2, 3, 4]
    assert len(clock.sleeps) == 4
    assert all(0 <= delay <= 1.0 for delay in clock.sleeps)


def test_no_attempt_eats_into_the_reserve() -> None:
    clock = FakeClock(budget=2.5)
    made = list(attempts(RetryPolicy(max_attempts=1000, base_delay=0.5, max_delay=0.5), time_left=clock.time_left,
                         reserve=2.0, sleep=clock.sleep))  # fmt: skip
    assert made  # the first attempt had 2.5 s > 2.0 s
    assert clock.time_left() > 2.0  # no sleep took the budget below the reserve


def test_no_first_attempt_without_time_unless_told_to_try_once() -> None:
    clock = FakeClock(budget=0.5)
    assert list(attempts(POLICY, time_left=clock.time_left, reserve=1.0, sleep=clock.sleep)) == []
    assert list(attempts(POLICY, time_left=clock.time_left, reserve=1.0, sleep=clock.sleep, always_try_once=True)) == [
        0
    ]
    assert clock.sleeps == []

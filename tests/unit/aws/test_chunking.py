"""aws.chunking.chunked: the one count/bytes splitting loop behind requests, batches and messages."""

from __future__ import annotations

import pytest

from metricbatch.aws.chunking import chunked


def test_runs_respect_the_count_limit() -> None:
    assert [len(run) for run in chunked(range(25), lambda _: 1, max_bytes=10**6, max_count=10)] == [10, 10, 5]


def test_runs_respect_the_byte_limit_exactly() -> None:
    runs = list(chunked([4, 3, 3, 5, 1, 9], lambda size: size, max_bytes=10))
    assert runs == [[4, 3, 3], [5, 1], [9]]
    assert all(sum(run) <= 10 for run in runs)


def test_order_is_kept_and_nothing_is_lost_or_repeated() -> None:
    items = list(range(1000))
    runs = list(chunked(items, lambda i: i % 17, max_bytes=100, max_count=30))
    assert [i for run in runs for i in run] == items


def test_an_item_bigger_than_the_budget_gets_a_run_of_its_own() -> None:
    assert list(chunked([1, 50, 1], lambda size: size, max_bytes=10)) == [[1], [50], [1]]


@pytest.mark.parametrize("max_count", [None, 3])
def test_nothing_in_nothing_out(max_count: int | None) -> None:
    assert list(chunked([], len, max_bytes=1, max_count=max_count)) == []

"""Splitting a sequence into runs bounded by count and bytes: the one loop behind every message and request.

SendMessageBatch (10 entries, 1 MiB), PutMetricData (1,000 datums, 1 MB), wire messages (1 MiB) and DLQ bodies all
go through ``chunked``; callers differ only in how they size an item and in the bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def chunked(
    items: Iterable[T], size: Callable[[T], int], *, max_bytes: int, max_count: int | None = None
) -> Iterator[list[T]]:
    """Consecutive runs of ``items``, in order, each of at most ``max_count`` items whose sizes add up to at most
    ``max_bytes``.

    Args:
        items: what to split.
        size: an item's bytes, including whatever separates it from its neighbour in the container.
        max_bytes: the budget of one run (the container's limit less its own overhead).
        max_count: the most items one run may hold; None for no count limit.

    An item bigger than ``max_bytes`` by itself still gets a run of its own: whether that can be sent is the
    caller's judgement (validation bounds every item well below the limits).
    """
    run: list[T] = []
    total = 0
    for item in items:
        item_size = size(item)
        if run and (len(run) == max_count or total + item_size > max_bytes):
            yield run
            run, total = [], 0
        run.append(item)
        total += item_size
    if run:
        yield run

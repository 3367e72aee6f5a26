"""Shard routing: which of N queues a series goes to, the same in every producer and language.

With ``shards`` > 1 (``metricbatch.deploy``) a deployment has N queues, each drained by its own event source
mapping; a series always goes to the same queue, so every producer's partial aggregates of a series-minute meet in
one shard's invocations and merge into one datum. The hash is FNV-1a (32 bit) of the series identity written as
compact JSON ``[namespace, name, [[key, value], ...sorted by key], unit, resolution]``: simple enough to write the
same in Node (``clients/node``), and checked against one shared vector file (tests/vectors/shards.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193
_MASK: Final = 0xFFFFFFFF


def series_identity(
    namespace: str, name: str, dimensions: Iterable[tuple[str, str]], unit: str, resolution: int
) -> str:
    """The routing identity of a series: namespace, name, dimensions (sorted), unit and resolution as JSON."""
    pairs = sorted([key, value] for key, value in dimensions)
    return json.dumps([namespace, name, pairs, unit, int(resolution)], separators=(",", ":"))


def fnv1a_32(data: bytes) -> int:
    """FNV-1a, 32 bit (http://www.isthe.com/chongo/tech/comp/fnv/)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def shard_of(identity: str, shards: int) -> int:
    """The shard (0..shards-1) of a series identity; always 0 with one shard."""
    if shards <= 1:
        return 0
    return fnv1a_32(identity.encode("utf-8")) % shards

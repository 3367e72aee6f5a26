"""At-least-once delivery: SQS may hand the same message over again, often to the same sandbox."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

# Message ids a sandbox remembers (about 2 MB); SQS redelivers within the visibility timeout, so recent ones matter.
RECENT_IDS_CAPACITY: Final = 50_000


class RecentMessageIds:
    """Message ids this sandbox settled lately, bounded (oldest forgotten first)."""

    def __init__(self, capacity: int = RECENT_IDS_CAPACITY) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

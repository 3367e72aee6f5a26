"""How a redrive loop is paced and stopped: at most N messages a second, and Ctrl-C finishes the current message."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class RateLimiter:
    """At most ``rate`` calls to ``wait()`` per second, evenly spaced."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._next = clock()

    def wait(self, stop: threading.Event) -> None:
        delay = self._next - self._clock()
        if delay > 0:
            stop.wait(delay)
        self._next = max(self._next, self._clock()) + self._interval


@contextmanager
def stop_on_sigint(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C lets the current message finish, then stops (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

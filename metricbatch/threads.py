"""Background threads that leave the application's signals to the main thread.

Python runs signal handlers in the main thread only. A process-directed SIGTERM or SIGINT that the kernel hands to
one of our background threads instead does not interrupt a main thread blocked in a C call (a
``multiprocessing.Pool`` worker waiting on its task queue, ``signal.pause()``, a lock): the handler never runs and
the process never ends (``Pool.terminate()`` then waits forever). So our threads block those signals.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Final

APPLICATION_SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT})


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread with SIGTERM and SIGINT blocked in it (it inherits the mask at creation, so no signal
    can reach it before it could block them itself)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, APPLICATION_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread

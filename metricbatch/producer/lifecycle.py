"""Process lifecycle: flush at normal exit, on SIGTERM, at the end of a multiprocessing child; reset after fork().

Which process sends what: a process sends only the metrics it accepted itself. A forked child starts with an
empty buffer and zeroed counters (what it inherited belongs to the parent, which still sends it), fresh locks,
and its own sender thread and AWS clients on its first metric.

Exit paths covered: interpreter exit (atexit), SIGTERM with the default disposition or an application handler
(chained), and the end of a multiprocessing / ProcessPoolExecutor child, which leaves with ``os._exit`` (a
``multiprocessing.util.Finalize`` registered in that child). Not covered: ``os._exit()`` called by the
application itself, SIGKILL, and a crash; call ``flush()`` before those.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Protocol

logger = logging.getLogger(__name__)

# Finalizers of priority >= 0 run first when a multiprocessing child ends.
_MULTIPROCESSING_EXIT_PRIORITY = 10


class Closable(Protocol):
    def close(self, timeout: float | None = None) -> None: ...

    def prepare_fork(self) -> None: ...

    def parent_after_fork(self) -> None: ...

    def reset_after_fork(self) -> None: ...


_producers: weakref.WeakSet[Closable] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_atexit_installed = False
_finalizer_pid = 0


def register(producer: Closable, *, handle_sigterm: bool) -> None:
    """Flush ``producer`` at exit, on SIGTERM and at the end of a multiprocessing child (idempotent)."""
    global _atexit_installed, _finalizer_pid
    _producers.add(producer)
    with _hooks_lock:
        if not _atexit_installed:
            _atexit_installed = True
            atexit.register(flush_all)
            if handle_sigterm and threading.current_thread() is threading.main_thread():
                _install_sigterm_handler()
        if _finalizer_pid != os.getpid() and _in_multiprocessing_child():
            _finalizer_pid = os.getpid()
            # The child was set up before its target ran (setup clears the finalizer registry); register now.
            util = sys.modules["multiprocessing.util"]
            util.Finalize(None, flush_all, exitpriority=_MULTIPROCESSING_EXIT_PRIORITY)


def watch_forks(producer: Closable) -> None:
    """Reset ``producer`` in a forked child (and close it at exit if any producer installed the exit hooks)."""
    _producers.add(producer)


def _in_multiprocessing_child() -> bool:
    # Only a process multiprocessing started has it imported and a parent process; never import it here.
    process = sys.modules.get("multiprocessing.process")
    return process is not None and "multiprocessing.util" in sys.modules and process.parent_process() is not None


def flush_all(timeout: float | None = None) -> None:
    for producer in list(_producers):
        try:
            producer.close(timeout)
        except Exception:  # pragma: no cover
            logger.exception("metricbatch: flush at exit failed")


_forking: list[Closable] = []


def _before_fork() -> None:
    _forking[:] = list(_producers)
    for producer in _forking:
        producer.prepare_fork()


def _after_fork_in_parent() -> None:
    for producer in _forking:
        producer.parent_after_fork()
    _forking.clear()


def _after_fork_in_child() -> None:
    global _finalizer_pid
    _finalizer_pid = 0
    for producer in _forking:
        producer.reset_after_fork()
    _forking.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def _install_sigterm_handler() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return  # the application chose to ignore SIGTERM; leave it so

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        flush_all()
        if callable(previous):
            previous(signum, frame)  # the application's own handler decides what happens next
            return
        # Default disposition: restore it and re-deliver, so the process ends exactly as it would have.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)

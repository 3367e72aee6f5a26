"""Process lifecycle: flush at normal exit, on SIGTERM, at the end of a multiprocessing child; reset after fork().

Which process sends what: a process sends only the metrics it accepted itself. A forked child starts with an
empty buffer and zeroed counters (what it inherited belongs to the parent, which still sends it), fresh locks,
and its own sender thread and AWS clients on its first metric.

Exit paths covered: interpreter exit (atexit), SIGTERM with the default disposition or an application handler
(chained), and the end of a multiprocessing / ProcessPoolExecutor child, which leaves with ``os._exit`` (a
``multiprocessing.util.Finalize`` registered in that child). Not covered: ``os._exit()`` called by the
application itself, SIGKILL, and a crash; call ``flush()`` before those.

Python runs a signal handler in the main thread between two bytecodes, so SIGTERM can interrupt the main thread
inside the producer's own code while it holds one of the producer's locks (``Pool.terminate()`` signals workers
that are flushing at their end). Flushing from the handler then would wait for that lock forever. So a SIGTERM
that interrupts producer code is handled as soon as that code has returned: at the end of the exit flush it
interrupted, or by re-sending it to the process every few milliseconds until it lands outside.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

# Finalizers of priority >= 0 run first when a multiprocessing child ends.
_MULTIPROCESSING_EXIT_PRIORITY = 10
# How often a SIGTERM that interrupted producer code is re-sent until it lands outside it.
_REDELIVER_INTERVAL = 0.005


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


_flushing_all = False  # the main thread is in flush_all(): a SIGTERM deferred meanwhile is handled when it ends
_deferred: list[int] = []  # a SIGTERM that interrupted producer code, not handled yet
_handle_sigterm: Callable[[int], None] | None = None  # flush, then what SIGTERM would have done without us


def flush_all(timeout: float | None = None) -> None:
    global _flushing_all
    outermost = not _flushing_all and threading.current_thread() is threading.main_thread()
    _flushing_all = _flushing_all or outermost
    try:
        for producer in list(_producers):
            try:
                producer.close(timeout)
            except Exception:  # pragma: no cover
                logger.exception("metricbatch: flush at exit failed")
    finally:
        if outermost:
            _flushing_all = False
            if _deferred and _handle_sigterm is not None:
                _handle_sigterm(_deferred.pop())


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
    global _finalizer_pid, _flushing_all
    _finalizer_pid, _flushing_all = 0, False
    _deferred.clear()  # a SIGTERM the parent had not handled yet is the parent's
    for producer in _forking:
        producer.reset_after_fork()
    _forking.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def _install_sigterm_handler() -> None:
    global _handle_sigterm
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return  # the application chose to ignore SIGTERM; leave it so

    def handle(signum: int, frame: FrameType | None = None) -> None:
        _deferred.clear()
        flush_all()
        if callable(previous):
            previous(signum, frame)  # the application's own handler decides what happens next
            return
        # Default disposition: restore it and re-deliver, so the process ends exactly as it would have.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if _interrupts_producer_code(frame):
            _defer(signum)
        else:
            handle(signum, frame)

    _handle_sigterm = handle
    signal.signal(signal.SIGTERM, on_sigterm)


def _interrupts_producer_code(frame: FrameType | None) -> bool:
    # Innermost first: a producer frame before any of timing's wrappers (which run application code) means the
    # signal interrupted the producer's own code.
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module == "metricbatch.producer.timing":
            return False
        if module.startswith("metricbatch.producer"):
            return True
        frame = frame.f_back
    return False


def _defer(signum: int) -> None:
    redelivering = bool(_deferred)
    _deferred[:] = [signum]
    if redelivering or _flushing_all:
        return  # already being re-sent, or the exit flush it interrupted handles it when it ends
    # No new threads at interpreter shutdown (RuntimeError): atexit's flush_all is about to handle it then.
    with contextlib.suppress(RuntimeError):
        start_daemon(_redeliver, "metricbatch-sigterm")


def _redeliver() -> None:
    while _deferred:
        time.sleep(_REDELIVER_INTERVAL)
        if _deferred:
            os.kill(os.getpid(), _deferred[0])

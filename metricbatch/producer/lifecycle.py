"""Process lifecycle: flush at normal exit, on SIGTERM, at the end of a multiprocessing child; reset after fork().

Which process sends what: a process sends only the metrics it accepted itself. A forked child starts with an
empty buffer and zeroed counters (what it inherited belongs to the parent, which still sends it), fresh locks,
and its own sender thread and AWS clients on its first metric.

Exit paths covered: interpreter exit (atexit), SIGTERM with the default disposition or an application handler
(chained), the end of a multiprocessing / ProcessPoolExecutor / billiard child, which leaves with ``os._exit`` (a
``util.Finalize`` registered in that child), and the end of a Celery prefork pool child (billiard's pool worker
skips its finalizers: Celery's ``worker_process_shutdown`` signal). Not covered: ``os._exit()`` called by the
application itself or by another pool library, SIGKILL, a crash, and ``Pool.terminate()`` (SIGTERM stays lethal
in Pool workers, see ``_restore_sigterm_in_pool_worker``); call ``flush()`` before those.

SIGTERM with the default disposition ends the process while its other threads may still be sending: the handler
flushes, then seals each producer (``end_for_signal``: what was accepted meanwhile is delivered from the handler,
and a later ``send_metric`` waits until the process is gone, so nothing is accepted that cannot be sent), then
re-raises. What cannot be delivered is counted as dropped and said in one ERROR line. The handler is installed when
the producer is first imported on the main thread (Python installs handlers only from there), so a producer first
used from a worker thread has it too; until a producer starts it only does what SIGTERM would have done. A process
that imports and uses the producer only off the main thread gets one WARNING saying SIGTERM is not covered there.

Python runs a signal handler in the main thread between two bytecodes, so SIGTERM can interrupt the main thread
inside the producer's own code while it holds one of the producer's locks (a process flushing at its end).
Flushing from the handler then would wait for that lock forever. So a SIGTERM that interrupts producer code is
handled as soon as that code has returned: at the end of the exit flush it interrupted, or by re-sending it to the
process every few milliseconds until it lands outside.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

# Finalizers of priority >= 0 run first when a multiprocessing child ends.
_MULTIPROCESSING_EXIT_PRIORITY = 10
# How often a SIGTERM that interrupted producer code is re-sent until it lands outside it.
_REDELIVER_INTERVAL = 0.005


class Closable(Protocol):
    def close(self, timeout: float | None = None) -> None: ...

    def end_for_signal(self, timeout: float | None = None) -> None: ...

    def resume_after_signal(self) -> None: ...

    def prepare_fork(self) -> None: ...

    def parent_after_fork(self) -> None: ...

    def reset_after_fork(self) -> None: ...


_producers: weakref.WeakSet[Closable] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_atexit_installed = False
_finalizer_pid = 0
_our_handler: object = None  # the SIGTERM handler we installed last (at import, or at the first metric)
_sigterm_wanted = False  # a producer with handle_sigterm=True started in this process: the handler flushes
_warned_no_handler = False


def register(producer: Closable, *, handle_sigterm: bool) -> None:
    """Flush ``producer`` at exit, on SIGTERM and at the end of a multiprocessing child (idempotent)."""
    global _atexit_installed, _finalizer_pid, _sigterm_wanted
    _producers.add(producer)
    with _hooks_lock:
        if handle_sigterm:
            _sigterm_wanted = True
        if not _atexit_installed:
            _atexit_installed = True
            atexit.register(flush_all)
            if handle_sigterm and signal.getsignal(signal.SIGTERM) is not _our_handler and not _in_pool_worker():
                # Not ours (never installed, replaced, or reset after fork): ours goes first, chaining to it.
                if threading.current_thread() is threading.main_thread():
                    _install_sigterm_handler()
                else:
                    _say_no_handler()
        if _finalizer_pid != os.getpid():
            util = _child_process_util()
            if util is not None:
                _finalizer_pid = os.getpid()
                # The child was set up before its target ran (setup clears the finalizer registry); register now.
                util.Finalize(None, flush_all, exitpriority=_MULTIPROCESSING_EXIT_PRIORITY)
                _connect_celery_pool_exit()


def watch_forks(producer: Closable) -> None:
    """Reset ``producer`` in a forked child (and close it at exit if any producer installed the exit hooks)."""
    _producers.add(producer)


def _child_process_util() -> Any:
    """The ``util`` module whose exit functions end this process, if multiprocessing or billiard started it.

    Both end their children with ``os._exit()`` right after ``util._exit_function()``, which runs the finalizers
    registered with ``util.Finalize``: atexit never runs there. Billiard (Celery's prefork pool) keeps its own
    process objects, so ``multiprocessing.parent_process()`` is None in its children; its current process knows its
    parent instead. Only a process they started has them imported: never import them here.
    """
    process = sys.modules.get("multiprocessing.process")
    if process is not None and "multiprocessing.util" in sys.modules and process.parent_process() is not None:
        return sys.modules["multiprocessing.util"]
    billiard = sys.modules.get("billiard.process")
    if (
        billiard is not None
        and "billiard.util" in sys.modules
        and getattr(billiard.current_process(), "_parent_pid", None) is not None
    ):
        return sys.modules["billiard.util"]
    return None


def _connect_celery_pool_exit() -> None:
    """In a Celery prefork pool child: flush when it ends (``worker_process_shutdown``).

    A billiard *pool* worker ends with ``os._exit()`` from its own exit path (``Worker._do_exit``), without the
    ``util._exit_function()`` that runs finalizers; the one thing it calls first is the pool's ``on_process_exit``
    callback, which Celery fills with its ``worker_process_shutdown`` signal. Only a process that has Celery imported
    can be a Celery pool child: never import it here.
    """
    signals = sys.modules.get("celery.signals")
    if signals is not None:
        signals.worker_process_shutdown.connect(_flush_at_pool_exit, weak=False, dispatch_uid="metricbatch.flush_all")


def _flush_at_pool_exit(**_: object) -> None:
    flush_all()


# SIGTERM deferral state. Stamped with the process id, so a forked child never acts on its parent's (no at-fork reset,
# which a signal could race).
_flushing_in = 0  # pid whose main thread is in flush_all(): a SIGTERM deferred meanwhile is handled when it ends
_deferred = (0, 0)  # (pid, signal) of a SIGTERM that interrupted producer code and is not handled yet
_redeliver_requests: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is reentrant: safe in a signal handler
_redeliverer_pid = 0  # the process whose redeliverer thread waits on _redeliver_requests
_handle_sigterm: Callable[[int], None] | None = None  # flush, then what SIGTERM would have done without us


def _in_pool_worker() -> bool:
    # multiprocessing.Pool names its workers ForkPoolWorker-N, SpawnPoolWorker-N, ForkServerPoolWorker-N.
    process = sys.modules.get("multiprocessing.process")
    return process is not None and "PoolWorker" in process.current_process().name


_ended: list[Closable] = []  # producers sealed by end_for_signal in this process, for _resume_after_signal


def flush_all(timeout: float | None = None, *, ending: bool = False) -> None:
    """Close every producer of this process; ``ending`` (the process dies of a signal next): seal them instead."""
    global _flushing_in
    pid = os.getpid()
    outermost = _flushing_in != pid and threading.current_thread() is threading.main_thread()
    if outermost:
        _flushing_in = pid
    try:
        for producer in list(_producers):
            try:
                if ending:
                    producer.end_for_signal(timeout)
                    _ended.append(producer)
                else:
                    producer.close(timeout)
            except Exception:  # pragma: no cover
                logger.exception("metricbatch: flush at exit failed")
    finally:
        if outermost:
            _flushing_in = 0
            signum = _take_deferred()
            if signum and _handle_sigterm is not None:
                _handle_sigterm(signum)


def _resume_after_signal() -> None:
    for producer in _ended:
        producer.resume_after_signal()
    _ended.clear()


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


def _say_no_handler() -> None:
    global _warned_no_handler
    if _warned_no_handler or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return  # the application handles SIGTERM itself (and exits through atexit), or ignores it
    _warned_no_handler = True
    logger.warning(
        "metricbatch cannot flush on SIGTERM in this process: it was first imported and first used off the main "
        "thread (Python installs signal handlers only from the main thread), so SIGTERM ends the process at once and "
        "the metrics buffered then (up to one flush interval of them) are lost without a count. Import metricbatch "
        "from the main thread (at the top of the entry module) or handle SIGTERM in the application"
    )


def _install_at_import() -> None:
    """Install the SIGTERM handler when the producer is first imported, if that is on the main thread.

    A producer first used from a worker thread cannot install it then (Python installs signal handlers only from the
    main thread), and a process without it dies of SIGTERM at once, losing what it buffered. Until a producer with
    ``handle_sigterm=True`` starts, the handler only does what SIGTERM would have done without it.
    """
    if threading.current_thread() is threading.main_thread() and not _in_pool_worker():
        with _hooks_lock:
            _install_sigterm_handler()


def _install_sigterm_handler() -> None:
    global _handle_sigterm, _our_handler
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:
        return  # the application chose to ignore SIGTERM; leave it so

    def handle(signum: int, frame: FrameType | None = None) -> None:
        _take_deferred()
        if callable(previous):
            if _sigterm_wanted:
                flush_all()
            previous(signum, frame)  # the application's own handler decides what happens next
            return
        # Default disposition: the process ends now, while other threads may still be sending. Deliver everything
        # accepted until then and accept nothing more (see end_for_signal), then restore the default disposition
        # and re-deliver, so the process ends exactly as it would have.
        if _sigterm_wanted:
            flush_all(ending=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        _resume_after_signal()  # only reached if the process survived it (SIGTERM blocked in this thread)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if _interrupts_producer_code(frame):
            _defer(signum)
        else:
            handle(signum, frame)

    _handle_sigterm, _our_handler = handle, on_sigterm
    signal.signal(signal.SIGTERM, on_sigterm)
    # A Pool worker forked from here must not keep it (see _restore_sigterm_in_pool_worker).
    import multiprocessing.util

    multiprocessing.util.register_after_fork(_after_fork_token, _restore_sigterm_in_pool_worker(on_sigterm, previous))


class _AfterForkToken:
    """What multiprocessing's after-fork registry keeps a weak reference to (a module-level instance)."""


_after_fork_token = _AfterForkToken()


def _restore_sigterm_in_pool_worker(ours: object, previous: object) -> Callable[[object], None]:
    """In a multiprocessing.Pool worker, give SIGTERM back its previous disposition (default: lethal).

    Pool.terminate() signals every worker once, while holding the lock of the workers' task queue. A Python
    handler runs only when the worker's main thread next checks for signals, and a worker that was about to block
    on that lock when the signal came never does: it waits there for good, and so does terminate() (CPython
    gh-96995). What a worker holds is flushed when it ends normally (pool.close() and pool.join(),
    maxtasksperchild); terminate() loses it, as it loses the worker's own pending work.
    """

    def restore(_: object) -> None:
        if _in_pool_worker() and signal.getsignal(signal.SIGTERM) is ours:
            signal.signal(signal.SIGTERM, previous if callable(previous) else signal.SIG_DFL)

    return restore


def _interrupts_producer_code(frame: FrameType | None) -> bool:
    # Innermost first: a producer frame before any of the wrappers that run application code (timing's, and the
    # AWS SDK call instrumentation's _make_api_call, which holds no lock itself) means the signal interrupted the
    # producer's own code.
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module == "metricbatch.producer.timing" or (
            module == "metricbatch.producer.instrument" and frame.f_code.co_name == "_make_api_call"
        ):
            return False
        if module.startswith("metricbatch.producer"):
            return True
        frame = frame.f_back
    return False


def _defer(signum: int) -> None:
    global _deferred, _redeliver_requests, _redeliverer_pid
    pid = os.getpid()
    _deferred = (pid, signum)
    if _flushing_in == pid:
        return  # the exit flush it interrupted handles it when it ends
    if _redeliverer_pid != pid:  # first deferral in this process (threads do not survive fork)
        requests: queue.SimpleQueue[int] = queue.SimpleQueue()
        try:
            start_daemon(lambda: _redeliver(requests), "metricbatch-sigterm")
        except RuntimeError:  # no new threads at interpreter shutdown: atexit's flush_all handles it then
            return
        _redeliver_requests, _redeliverer_pid = requests, pid
    _redeliver_requests.put(signum)


def _take_deferred() -> int:
    """The SIGTERM this process deferred (0 if none), now taken."""
    global _deferred
    pid, signum = _deferred
    _deferred = (0, 0)
    return signum if pid == os.getpid() else 0


def _redeliver(requests: queue.SimpleQueue[int]) -> None:
    # Blocks SIGTERM itself (start_daemon), so each re-sent signal reaches the main thread.
    pid = os.getpid()
    while True:
        requests.get()
        while _deferred[0] == pid:
            time.sleep(_REDELIVER_INTERVAL)
            deferred_pid, signum = _deferred
            if deferred_pid == pid:
                os.kill(pid, signum)


_install_at_import()

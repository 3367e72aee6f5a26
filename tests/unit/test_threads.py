"""Our background threads leave SIGTERM and SIGINT to the main thread, where Python runs the handlers."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from metricbatch.threads import start_daemon

from .conftest import ProducerFactory
from .fakes import FakeSqs


def _blocked_signals(thread: threading.Thread | None = None) -> set[int]:
    # The kernel's view of one thread's blocked-signal mask (Linux): a hex bit mask, bit n-1 for signal n.
    tid = (thread or threading.current_thread()).native_id
    status = Path(f"/proc/self/task/{tid}/status").read_text()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")


def test_a_daemon_thread_blocks_the_application_signals_and_the_caller_keeps_its_mask() -> None:
    before = _blocked_signals()
    seen: list[set[int]] = []
    done = threading.Event()

    def body() -> None:
        seen.append(_blocked_signals())
        done.wait(5)

    thread = start_daemon(body, "probe")
    try:
        while not seen:
            thread.join(0.01)
        assert {signal.SIGTERM, signal.SIGINT} <= seen[0]
        assert thread.daemon
        assert _blocked_signals() == before  # the starting thread's mask is restored
    finally:
        done.set()
        thread.join(5)


def test_the_producers_sender_thread_never_takes_a_sigterm_meant_for_the_application(
    make_producer: ProducerFactory, fake_sqs: FakeSqs
) -> None:
    # GIVEN a producer whose sender thread is running (a multiprocessing.Pool worker after its first task)
    producer = make_producer()
    producer.send_metric("Hits", 1.0, namespace="Signals")
    assert producer.flush(5)
    senders = [t for t in threading.enumerate() if t.name == "metricbatch-sender"]
    assert senders
    # THEN a process-directed SIGTERM can only be delivered to a thread that runs Python's handlers: not the sender
    # (if it took the signal, a main thread blocked in a C call would never run the flush-and-exit handler)
    for sender in senders:
        assert {signal.SIGTERM, signal.SIGINT} <= _blocked_signals(sender)
    assert signal.SIGTERM not in _blocked_signals()

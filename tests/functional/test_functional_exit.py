"""Metrics buffered when a service exits without flush(), or is sent SIGTERM, still reach the queue."""

from __future__ import annotations

import signal
import textwrap

import pytest
from functional_support import child_env, run_service, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

METRICS = 5000
CHILD_TIMEOUT = 30

SEND = """
    import os, signal, sys, time
    from metricbatch import send_metric

    def send():
        for i in range(int(sys.argv[1])):
            send_metric("Exits", 0.5, dimensions={"Host": f"h{i % 4}"})

    def sigterm_while_the_library_holds_a_lock():
        # The one-shot trace sends SIGTERM at the point Pool.terminate() once hit a worker flushing at its end: the
        # main thread inside the library's own code, holding the sender's wake lock (Event.set -> notify_all).
        def trace(frame, event, arg):
            caller = frame.f_back
            if (event == "call" and frame.f_code.co_name == "notify_all" and caller.f_code.co_name == "set"
                    and caller.f_back.f_globals["__name__"].startswith("metricbatch.")):
                sys.settrace(None)
                os.kill(os.getpid(), signal.SIGTERM)

        sys.settrace(trace)
"""
ENDINGS = {
    # the script just ends: no flush(), no close()
    "normal-exit": """
    send()
    """,
    # SIGTERM with the default disposition: the process must still die of SIGTERM, after flushing
    "sigterm": """
    send()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(CHILD_TIMEOUT)
    print("survived SIGTERM", flush=True)
    """,
    # the application's own handler, installed before the first metric: the library chains to it
    "app-handler-first": """
    def on_sigterm(signum, frame):
        print("app handler called", flush=True)
        sys.exit(3)

    signal.signal(signal.SIGTERM, on_sigterm)
    send()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(CHILD_TIMEOUT)
    """,
    # the application's own handler, installed after the first metric (replacing the library's): exit still flushes
    "app-handler-later": """
    def on_sigterm(signum, frame):
        print("app handler called", flush=True)
        sys.exit(3)

    send()
    signal.signal(signal.SIGTERM, on_sigterm)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(CHILD_TIMEOUT)
    """,
    # SIGTERM lands while the main thread is inside flush(), holding a library lock: handled once flush() returns
    "sigterm-inside-flush": """
    send()
    sigterm_while_the_library_holds_a_lock()
    from metricbatch import flush
    flush(10)
    time.sleep(CHILD_TIMEOUT)
    print("survived SIGTERM", flush=True)
    """,
    # ... or inside the flush at exit (a multiprocessing.Pool worker ending as Pool.terminate() signals it)
    "sigterm-inside-exit-flush": """
    send()
    sigterm_while_the_library_holds_a_lock()
    """,
}
EXPECTED_EXIT = {
    "normal-exit": 0,
    "sigterm": -signal.SIGTERM,
    "app-handler-first": 3,
    "app-handler-later": 3,
    "sigterm-inside-flush": -signal.SIGTERM,
    "sigterm-inside-exit-flush": -signal.SIGTERM,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_every_metric_buffered_at_exit_or_sigterm_reaches_the_queue(clean_pipeline: LocalPipeline, ending: str) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Exit")
    script = textwrap.dedent(SEND + ENDINGS[ending]).replace("CHILD_TIMEOUT", str(CHILD_TIMEOUT))

    # GIVEN a service process that sends metrics and never calls flush()
    # WHEN it ends as this case says
    child, elapsed = run_service(script, child_env(pipeline, namespace), str(METRICS), timeout=CHILD_TIMEOUT + 10)

    # THEN it ends the way it would have without the library, promptly
    assert child.returncode == EXPECTED_EXIT[ending], child.stderr[-2000:]
    assert "survived" not in child.stdout
    assert elapsed < 15, elapsed
    if ending.startswith("app-handler"):
        assert "app handler called" in child.stdout
    # AND every metric it sent is in the queue: once drained, CloudWatch holds all of them
    assert pipeline.queue_depth() >= 1
    pipeline.poller.drain(timeout=30, window_seconds=0.5)
    sums = [pipeline.read_series(namespace, "Exits", {"Host": f"h{k}"}) for k in range(4)]
    assert sums == [(METRICS / 4 * 0.5, METRICS / 4)] * 4
    assert take_dlq(pipeline) == []

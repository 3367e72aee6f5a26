"""A process killed by SIGTERM while its threads are still sending: every metric it accepted reaches the queue.

A plain threaded service (no server framework): two threads call ``send_metric`` in a loop and tally each call in
a shared file (``attempted`` before the call, ``returned`` after it), the main thread waits; SIGTERM comes after
~2 s while the threads are still sending. The samples on the queue, per thread, must lie between the two tallies
(a call in flight when the process died may or may not have been accepted), and the process must still die of
SIGTERM. Before the fix the threads kept sending during the handler's flush and the re-raised SIGTERM ended the
process with those metrics buffered; a producer first used off the main thread had no handler at all.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from functional_support import unique_namespace
from server_support import child_env, samples_on_queue, wait_for

from metricbatch.emulator.local_pipeline import LocalPipeline

THREADS = 2
SENDING_SECONDS = 2.0
CHILD_TIMEOUT = 60

SERVICE = """
import mmap, struct, sys, threading, time

tally_file = open(sys.argv[1], "r+b")
tally = mmap.mmap(tally_file.fileno(), 16 * THREADS)
first_use = sys.argv[2]
if first_use != "thread-import":
    from metricbatch import send_metric  # the usual place: the top of the entry module, on the main thread


def loop(k: int) -> None:
    from metricbatch import send_metric

    dimensions = {"Thread": str(k)}
    n = 0
    while True:
        struct.pack_into("q", tally, 16 * k, n + 1)  # attempted
        send_metric("Calls", 1.0, unit="Count", dimensions=dimensions)
        n += 1
        struct.pack_into("q", tally, 16 * k + 8, n)  # returned


if first_use == "main":
    send_metric("Started", 1.0, unit="Count")
threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(THREADS)]
for thread in threads:
    thread.start()
print("sending", flush=True)
for thread in threads:
    thread.join()
"""


@pytest.mark.parametrize("first_use", ["main", "thread"])
def test_sigterm_while_threads_still_send_loses_nothing_accepted(
    clean_pipeline: LocalPipeline, tmp_path: Path, first_use: str
) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Sigterm")
    tally_file = tmp_path / "tally"
    tally_file.write_bytes(bytes(16 * THREADS))
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent(SERVICE).replace("THREADS", str(THREADS)))

    # GIVEN a threaded service whose first metric comes from the main thread, or from one of its worker threads
    child = subprocess.Popen(
        [sys.executable, str(script), str(tally_file), first_use],
        env=child_env(pipeline, namespace),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "sending\n"
    # WHEN it is sent SIGTERM while both threads are still sending
    time.sleep(SENDING_SECONDS)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT)

    # THEN it dies of SIGTERM, as it would have without the library
    assert child.returncode == -signal.SIGTERM, stderr[-3000:]
    # AND every metric a call accepted is on the queue: at least every call that returned, at most every call made
    tally = tally_file.read_bytes()
    counts = samples_on_queue(pipeline, namespace, "Calls", "Thread")
    for k in range(THREADS):
        attempted, returned = struct.unpack_from("qq", tally, 16 * k)
        assert returned > 10_000, (k, returned)  # it really was sending hard
        assert returned <= counts.get(str(k), 0) <= attempted, (k, returned, counts, attempted, stderr[-2000:])
    # AND nothing was dropped, so nothing was said
    assert "dropped" not in stderr, stderr[-2000:]


def test_a_producer_imported_and_first_used_off_the_main_thread_says_sigterm_is_not_covered(
    clean_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    # GIVEN a service that imports metricbatch only inside its worker threads (no handler can be installed there)
    tally_file = tmp_path / "tally"
    tally_file.write_bytes(bytes(16 * THREADS))
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent(SERVICE).replace("THREADS", str(THREADS)))
    child = subprocess.Popen(
        [sys.executable, str(script), str(tally_file), "thread-import"],
        env=child_env(clean_pipeline, unique_namespace("Sigterm")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "sending\n"
    # (once its threads have imported metricbatch and sent their first metrics)
    wait_for(lambda: struct.unpack_from("q", tally_file.read_bytes(), 8)[0] > 0, 30, "the first metric")
    # WHEN it is stopped with SIGTERM
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT)
    # THEN it dies at once, but said so in one line when its producer started, with what to do about it
    assert child.returncode == -signal.SIGTERM
    assert stderr.count("metricbatch cannot flush on SIGTERM") == 1, stderr[-2000:]
    assert "Import metricbatch from the main thread" in stderr


def test_the_handler_installed_at_import_does_nothing_else_while_no_producer_started(tmp_path: Path) -> None:
    # GIVEN a process that imports the producer on its main thread but never sends a metric
    script = "import time, metricbatch.producer.default; print('up', flush=True); time.sleep(30)"
    child = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "up\n"
    started = time.monotonic()
    # WHEN it is sent SIGTERM
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT)
    # THEN it dies of it at once and prints nothing
    assert child.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 2
    assert stderr == ""


def test_a_forked_child_that_reset_sigterm_before_its_first_metric_still_flushes_on_it(
    clean_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    namespace = unique_namespace("Sigterm")
    script = tmp_path / "service.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, time
            from metricbatch import send_metric  # the parent imports it (its handler is installed) and sends nothing

            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a pre-fork server resets its workers' signals
                for _ in range(1000):
                    send_metric("Calls", 1.0, unit="Count", dimensions={"Thread": "child"})
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
            """
        )
    )
    # GIVEN a parent that imported metricbatch, and a forked child that set SIGTERM back to the default
    # WHEN the child sends 1,000 metrics and is sent SIGTERM
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=child_env(clean_pipeline, namespace),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    # THEN it died of SIGTERM after sending all of them
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(-signal.SIGTERM)]
    assert samples_on_queue(clean_pipeline, namespace, "Calls", "Thread") == {"child": 1000}

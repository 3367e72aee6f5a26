"""Issue 17: no drops while SQS is healthy, from one thread in a tight loop or from 8 threads at once.

The service runs in its own process against the embedded AWS, as a real service talks to a remote SQS. Counts
only (no timing): the rate the sender sustains is measured by ``make bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from functional_support import Expected, mismatches, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

SERVICE = """
import json, sys, threading
from metricbatch import flush, send_metric, stats

threads, per_thread = int(sys.argv[1]), int(sys.argv[2])

def send(tag):
    for i in range(per_thread):
        send_metric("Load", float(i % 8), unit="Count", dimensions={"Thread": tag, "Kind": f"k{i % 4}"})

workers = [threading.Thread(target=send, args=(f"t{n}",)) for n in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps({"flushed": flush(60), **stats()}))
"""


@pytest.mark.parametrize(("threads", "per_thread"), [(1, 300_000), (8, 100_000)], ids=["1x300000", "8x100000"])
def test_a_service_sending_as_fast_as_it_can_drops_nothing(
    clean_pipeline: LocalPipeline, threads: int, per_thread: int
) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Load")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_", "POWERTOOLS_"))}
    env.update(pipeline.env(), METRICBATCH_NAMESPACE=namespace, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    # GIVEN SQS is healthy WHEN a service sends from `threads` threads in tight loops
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SERVICE), str(threads), str(per_thread)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    stats = json.loads(done.stdout.splitlines()[-1])
    total = threads * per_thread
    # THEN nothing was dropped, flush() reports everything delivered
    assert (stats["flushed"], stats["accepted"], stats["sent"], stats["dropped"]) == (True, total, total, 0), stats
    assert stats["buffered"] == 0
    # AND every series reads back exactly from CloudWatch
    pipeline.poller.drain(timeout=60, window_seconds=0.5)
    expected = Expected.empty()
    for n in range(threads):
        for i in range(per_thread):
            expected.add(namespace, "Load", float(i % 8), {"Thread": f"t{n}", "Kind": f"k{i % 4}"})
    assert mismatches(pipeline, expected) == {}
    assert take_dlq(pipeline) == []

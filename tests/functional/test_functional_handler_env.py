"""The handler module imported before its environment is set (a test runner, a warm-up import) still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os
    import metricbatch.batcher.handler  # imported before any POWERTOOLS_* or METRICBATCH_* variable exists
    from metricbatch.batcher.self_metrics import METRICS_RECEIVED
    from metricbatch.env import SELF_METRICS_NAMESPACE
    from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline

    with LocalPipeline(queue_name="handler-env") as pipeline:
        producer = pipeline.producer()
        for i in range(100):
            producer.send_metric("Early", 1.0, namespace="Env/Check")
        producer.flush(10)
        pipeline.drain(timeout=30)
        service = {"service": LOCAL_SERVICE_NAME}
        print(json.dumps({
            "batch_failures": pipeline.poller.stats.batch_failures,
            "queue_depth": pipeline.queue_depth(),
            "sum": pipeline.read_series("Env/Check", "Early")[0],
            "received": pipeline.read_series(SELF_METRICS_NAMESPACE, METRICS_RECEIVED, service)[0],
        }))
    """
)


def test_handler_imported_before_its_environment_publishes_once_and_reports_self_metrics() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_", "POWERTOOLS_"))}
    # GIVEN a process that imports the handler module first WHEN it runs the pipeline
    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    # THEN no batch failed after publishing (which would redeliver and double-count it), and self-metrics went out
    assert report == {"batch_failures": 0, "queue_depth": 0, "sum": 100.0, "received": 100.0}

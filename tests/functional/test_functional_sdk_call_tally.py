"""instrument_boto3 in a service process: the calls it counts (call_tally.py) reach CloudWatch when the process
exits, is sent SIGTERM, or forks, and a SIGTERM that lands inside a long SDK call is handled at once."""

from __future__ import annotations

import signal
import textwrap

import pytest
from functional_support import child_env, run_service, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

CALLS = 40
CHILD_TIMEOUT = 30

SERVICE = """
    import os, signal, sys, time
    import boto3
    from metricbatch import instrument_boto3

    # boto3's default session, the default producer (METRICBATCH_* variables)
    instrument_boto3(namespace=os.environ["METRICBATCH_NAMESPACE"])
    sqs = boto3.client("sqs")

    def calls(n):
        for _ in range(n):
            sqs.list_queues()
"""
ENDINGS = {
    # the script just ends: no flush(), no close()
    "normal-exit": """
    calls(CALLS)
    """,
    # SIGTERM with the default disposition, between calls
    "sigterm": """
    calls(CALLS)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(CHILD_TIMEOUT)
    print("survived SIGTERM", flush=True)
    """,
    # SIGTERM while the main thread waits inside an SDK call (as in a long poll): the instrumentation's wrapper is
    # on the stack, and the signal must not wait for the call to end
    "sigterm-inside-a-call": """
    calls(CALLS)

    def long_poll(**_):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(CHILD_TIMEOUT)
        print("the call ended before SIGTERM was handled", flush=True)

    sqs.meta.events.register("before-send.sqs.GetQueueUrl", long_poll)
    sqs.get_queue_url(QueueName="anything")
    """,
    # fork: the parent's calls counted before the fork are the parent's; the child sends only its own
    "fork": """
    calls(CALLS // 2)
    pid = os.fork()
    if pid == 0:
        calls(CALLS // 4)
        sys.exit(0)
    os.waitpid(pid, 0)
    calls(CALLS // 4)
    """,
    # multiprocessing children (fork; spawn cannot import a `python -c` script): each ends through
    # multiprocessing's own exit (os._exit after its finalizers), no flush() in it
    "multiprocessing": """
    import multiprocessing

    calls(CALLS // 2)
    for _ in range(2):
        child = multiprocessing.get_context("fork").Process(target=calls, args=(CALLS // 4,))
        child.start()
        child.join()
        assert child.exitcode == 0, child.exitcode
    """,
}
EXPECTED_EXIT = {
    "normal-exit": 0,
    "sigterm": -signal.SIGTERM,
    "sigterm-inside-a-call": -signal.SIGTERM,
    "fork": 0,
    "multiprocessing": 0,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_counted_sdk_calls_reach_cloudwatch_however_the_process_ends(
    clean_pipeline: LocalPipeline, ending: str
) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("SdkEnd")
    script = textwrap.dedent(SERVICE + ENDINGS[ending])
    script = script.replace("CHILD_TIMEOUT", str(CHILD_TIMEOUT)).replace("CALLS", str(CALLS))

    # GIVEN a service whose boto3 calls are instrumented, with the metrics going to its default producer
    # WHEN it makes calls and ends as this case says, never calling flush()
    child, elapsed = run_service(script, child_env(pipeline, namespace), timeout=CHILD_TIMEOUT + 10)

    # THEN it ends as it would have without the library, promptly (SIGTERM is not held until a call ends)
    assert child.returncode == EXPECTED_EXIT[ending], child.stderr[-2000:]
    assert "survived" not in child.stdout
    assert "the call ended" not in child.stdout
    assert elapsed < 20, elapsed
    # AND every call it made is counted once in CloudWatch: none lost, none twice
    pipeline.poller.drain(timeout=30, window_seconds=0.5)
    sdk = namespace
    dims = {"ServiceId": "SQS", "OperationName": "ListQueues"}
    assert pipeline.read_series(sdk, "ApiCallSuccessful", dims) == (CALLS, CALLS)
    assert pipeline.read_series(sdk, "RetryCount", dims) == (0.0, CALLS)
    assert pipeline.read_series(sdk, "ApiCallDuration", dims)[1] == CALLS
    assert take_dlq(pipeline) == []

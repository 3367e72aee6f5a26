"""The Node producer (clients/node) end to end: Node processes send through the embedded AWS, the real batcher
publishes, and CloudWatch (behind the strict gateway) is read back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parents[2]
NODE_PACKAGE = REPO / "clients" / "node"
ENTRY = NODE_PACKAGE / "dist" / "esm" / "index.js"
CHILD_TIMEOUT = 60


@pytest.fixture(scope="module")
def node_entry() -> str:
    """The built package (make test builds it first; a stale or missing build is rebuilt here)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node 20 is required for the Node producer's tests (see README)")
    sources = list((NODE_PACKAGE / "src").glob("*.ts"))
    if not ENTRY.exists() or ENTRY.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        if not (NODE_PACKAGE / "node_modules").exists():
            pytest.fail("clients/node is not installed: run `make setup` (npm ci in clients/node)")
        subprocess.run(["npm", "run", "--silent", "build"], cwd=NODE_PACKAGE, check=True, timeout=300)
    return ENTRY.as_uri()


@pytest.fixture(scope="module")
def shared_pipeline(deployed_assembly: Path) -> Iterator[LocalPipeline]:
    with LocalPipeline(queue_name=f"node-{time.monotonic_ns()}", assembly=deployed_assembly) as p:
        yield p


@pytest.fixture
def pipeline(shared_pipeline: LocalPipeline) -> Iterator[LocalPipeline]:
    """One embedded AWS for the module (each test writes its own namespace); counters and faults start clean."""
    shared_pipeline.aws.ledger.reset()
    yield shared_pipeline
    shared_pipeline.aws.faults.clear()


def _run_node(
    script: str,
    pipeline: LocalPipeline,
    tmp_path: Path,
    namespace: str,
    *args: str,
    env_overrides: dict[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "service.mjs"
    path.write_text(textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env.update({**pipeline.env(), "METRICBATCH_NAMESPACE": namespace})
    for name, value in (env_overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        ["node", str(path), *args], env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )


def _delivered(pipeline: LocalPipeline, namespace: str, name: str, dimensions: dict[str, str]) -> tuple[float, float]:
    return pipeline.read_series(namespace, name, dimensions)


def test_10000_metrics_over_50_series_from_node_read_back_exactly(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    # GIVEN a Node service using MetricProducer from the environment (queue URL, endpoint, region, credentials)
    namespace = f"E2E/Node{time.monotonic_ns()}"
    script = f"""
        import {{ MetricProducer }} from "{node_entry}";
        const producer = new MetricProducer();
        for (let i = 0; i < 10000; i++) {{
          const dimensions = {{ Series: `s${{i % 50}}` }};
          producer.sendMetric("Latency", (i % 13) + 0.25, {{ unit: "Milliseconds", dimensions }});
        }}
        const flushed = await producer.flush(30000);
        await producer.close();
        console.log(JSON.stringify({{ flushed, ...producer.stats() }}));
    """
    # WHEN it sends 10,000 metrics over 50 series and the batcher drains the queue
    child = _run_node(script, pipeline, tmp_path, namespace)
    assert child.returncode == 0, child.stderr
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    pipeline.drain()
    # THEN every series reads back with its exact sum and count, through few requests
    expected: dict[int, list[float]] = {s: [0.0, 0.0] for s in range(50)}
    for i in range(10000):
        expected[i % 50][0] += (i % 13) + 0.25
        expected[i % 50][1] += 1
    for s in range(50):
        assert _delivered(pipeline, namespace, "Latency", {"Series": f"s{s}"}) == pytest.approx(tuple(expected[s]))
    assert stats["flushed"] is True
    assert (stats["sent"], stats["dropped"], stats["fallbackPublished"], stats["buffered"]) == (10000, 0, 0, 0)
    # merged per series and minute: at most 50 series x 2 minutes x 13 values of wire entries
    assert stats["wireMetricsSent"] <= 100
    ledger = pipeline.aws.ledger.snapshot()
    assert ledger["calls"]["sqs:SendMessageBatch"] == stats["sqsRequests"] <= 3
    assert ledger["rejections"] == []
    assert pipeline.dlq_depth() == 0


SEND = """
    import {{ sendMetric }} from "{entry}";
    function send() {{
      const count = Number(process.argv[2]);
      for (let i = 0; i < count; i++) sendMetric("Exits", 0.5, {{ dimensions: {{ Host: `h${{i % 4}}` }} }});
    }}
"""
ENDINGS = {
    # the script just ends: no flush(), no close(); beforeExit flushes
    "normal-exit": ("send();", 0),
    # SIGTERM, default disposition: flushed, then the process still dies of SIGTERM
    "sigterm": (
        'send(); process.kill(process.pid, "SIGTERM"); setTimeout(() => console.log("survived SIGTERM"), 30000);',
        -signal.SIGTERM,
    ),
    "sigint": (
        'send(); process.kill(process.pid, "SIGINT"); setTimeout(() => console.log("survived SIGINT"), 30000);',
        -signal.SIGINT,
    ),
    # the application's own handler, installed first, exits at once: the exit hook sends synchronously
    "app-handler-first": (
        'process.on("SIGTERM", () => { console.log("app handler called"); process.exit(3); });'
        ' send(); process.kill(process.pid, "SIGTERM"); setTimeout(() => {}, 30000);',
        3,
    ),
    # the application's handler, installed after the first metric, exits at once while the flush is under way
    "app-handler-later": (
        'send(); process.on("SIGTERM", () => { console.log("app handler called"); process.exit(3); });'
        ' process.kill(process.pid, "SIGTERM"); setTimeout(() => {}, 30000);',
        3,
    ),
    # process.exit() right after sending: no event loop left, the exit hook sends synchronously
    "process-exit": ("send(); process.exit(0);", 0),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_metrics_buffered_at_exit_or_on_a_signal_arrive(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str, ending: str
) -> None:
    # GIVEN a Node service that sends 2,000 metrics through the module-level helper and never flushes
    namespace = f"E2E/NodeExit{time.monotonic_ns()}"
    code, expected_exit = ENDINGS[ending]
    # WHEN it ends as the case says
    child = _run_node(SEND.format(entry=node_entry) + code, pipeline, tmp_path, namespace, "2000")
    # THEN it ended as it would have without the library, and every metric reached CloudWatch
    assert child.returncode == expected_exit, child.stderr
    assert "survived" not in child.stdout
    if ending.startswith("app-handler"):
        assert "app handler called" in child.stdout
    pipeline.drain()
    for host in range(4):
        assert _delivered(pipeline, namespace, "Exits", {"Host": f"h{host}"}) == (250.0, 500.0)
    assert pipeline.dlq_depth() == 0


def test_sqs_down_falls_back_to_put_metric_data_within_cloudwatch_limits(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    # GIVEN SQS answering 503 to every SendMessageBatch
    pipeline.aws.faults.add(Fault("sqs:SendMessageBatch", kind="unavailable"))
    namespace = f"E2E/NodeFallback{time.monotonic_ns()}"
    script = f"""
        import {{ MetricProducer }} from "{node_entry}";
        const producer = new MetricProducer();
        for (let i = 0; i < 3000; i++) {{
          producer.sendMetric("Fallback", i % 300, {{ dimensions: {{ Host: `h${{i % 1200}}` }} }});
        }}
        await producer.close(30000);
        console.log(JSON.stringify(producer.stats()));
    """
    # WHEN a Node service sends 3,000 metrics over 1,200 series
    child = _run_node(script, pipeline, tmp_path, namespace)
    assert child.returncode == 0, child.stderr
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    # THEN it published them directly (the strict gateway accepted every request) and nothing went through SQS
    assert (stats["fallbackPublished"], stats["dropped"], stats["sent"]) == (3000, 0, 0)
    ledger = pipeline.aws.ledger.snapshot()
    assert ledger["rejections"] == []
    assert ledger["calls"]["cloudwatch:PutMetricData"] == stats["putMetricDataCalls"] == 2  # 1,200 datums: 1,000 + 200
    assert pipeline.queue_depth() == 0
    for host in (0, 1, 599, 1199):
        values = [i % 300 for i in range(3000) if i % 1200 == host]
        assert _delivered(pipeline, namespace, "Fallback", {"Host": f"h{host}"}) == (sum(values), len(values))


MISCONFIGURED = """
    import {{ sendMetric, flush, stats }} from "{entry}";
    for (let i = 0; i < 500; i++) sendMetric("Misconfigured", i % 7, {{ dimensions: {{ Host: `h${{i % 4}}` }} }});
"""
# How the service ends: awaiting flush() and printing stats(), or process.exit() at once (the exit hook's sender).
MISCONFIGURED_ENDINGS = {
    "flush": "const flushed = await flush(10000); console.log(JSON.stringify({ flushed, ...stats() }));",
    "process-exit": "process.exit(0);",
}


def _lines_naming(stderr: str, *words: str) -> list[str]:
    return [line for line in stderr.splitlines() if all(word in line for word in words)]


@pytest.mark.parametrize("ending", list(MISCONFIGURED_ENDINGS))
def test_a_queue_that_does_not_exist_is_one_error_and_never_a_fallback(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str, ending: str
) -> None:
    # GIVEN a Node service whose METRICBATCH_QUEUE_URL names a queue that does not exist on the (embedded) AWS
    missing = f"{pipeline.aws.endpoint_url}/123456789012/nope"
    namespace = f"E2E/NodeMissing{time.monotonic_ns()}"
    script = MISCONFIGURED.format(entry=node_entry) + MISCONFIGURED_ENDINGS[ending]
    # WHEN it sends 500 metrics and ends
    child = _run_node(script, pipeline, tmp_path, namespace, env_overrides={"METRICBATCH_QUEUE_URL": missing})
    # THEN nothing was thrown, it exited normally, and one ERROR line named the setting, the refusal and the region
    # the queue was looked for in (the one the SDK resolved)
    assert child.returncode == 0, child.stderr
    assert "Uncaught" not in child.stderr and "ConfigurationError" not in child.stderr
    (line,) = _lines_naming(child.stderr, "METRICBATCH_QUEUE_URL")
    assert line.startswith("metricbatch ERROR:") and missing in line and "NonExistentQueue" in line, line
    assert f"{missing} (region {pipeline.aws.region}): " in line, line
    # AND SQS was asked, CloudWatch never: no direct PutMetricData for a wrong setting
    calls = pipeline.aws.ledger.snapshot()["calls"]
    assert calls.get("sqs:SendMessageBatch", 0) >= 1
    assert calls.get("cloudwatch:PutMetricData", 0) == 0
    if ending == "flush":
        stats = json.loads(child.stdout.strip().splitlines()[-1])
        assert stats["flushed"] is False
        assert (stats["sent"], stats["fallbackPublished"], stats["putMetricDataCalls"]) == (0, 0, 0)
        assert missing in stats["configError"] and "METRICBATCH_QUEUE_URL" in stats["configError"]
        assert f"(region {pipeline.aws.region})" in stats["configError"]
        assert stats["mode"] == "sqs"


def test_no_queue_url_is_one_warning_and_counted_discards(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    # GIVEN a Node service on a host without METRICBATCH_QUEUE_URL (and without the pipeline's METRICBATCH_MODE=sqs,
    # which the Node producer reads too: nothing is configured at all)
    namespace = f"E2E/NodeNoQueue{time.monotonic_ns()}"
    script = MISCONFIGURED.format(entry=node_entry) + MISCONFIGURED_ENDINGS["flush"]
    # WHEN it sends 500 metrics, flushes and ends
    unset: dict[str, str | None] = {"METRICBATCH_QUEUE_URL": None, "METRICBATCH_MODE": None}
    child = _run_node(script, pipeline, tmp_path, namespace, env_overrides=unset)
    # THEN it exited 0 with one warning naming the variable, and stats() says what happened and why
    assert child.returncode == 0, child.stderr
    (line,) = _lines_naming(child.stderr, "METRICBATCH_QUEUE_URL")
    assert "MetricBatchWarning" in line and "discarded" in line, line
    assert "ERROR" not in child.stderr
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    assert (stats["mode"], stats["discarded"], stats["sent"], stats["flushed"]) == ("off", 500, 0, False)
    assert "METRICBATCH_QUEUE_URL" in stats["modeReason"]
    # AND nothing reached AWS
    calls = pipeline.aws.ledger.snapshot()["calls"]
    assert calls.get("sqs:SendMessageBatch", 0) == calls.get("cloudwatch:PutMetricData", 0) == 0


def test_memory_mode_captures_in_the_process_and_never_calls_aws(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    # GIVEN a Node service with METRICBATCH_MODE=memory on a host whose queue URL is set (the mode decides)
    namespace = f"E2E/NodeMemory{time.monotonic_ns()}"
    testing = node_entry.removesuffix("index.js") + "testing.js"
    minute = int(time.time()) // 60 * 60 - 600
    script = f"""
        import {{ sendMetric, stats }} from "{node_entry}";
        import {{ captured, values }} from "{testing}";
        for (let i = 0; i < 6; i++) {{
          const dimensions = {{ Service: i % 2 ? "web" : "cart" }};
          sendMetric("Orders", i, {{ unit: "Count", dimensions, timestamp: {minute} }});
        }}
        let rule = "";
        try {{ sendMetric("Orders", NaN); }} catch (error) {{ rule = error.rule; }}
        const cart = values("Orders", {{ dimensions: {{ Service: "cart" }} }});
        console.log(JSON.stringify({{ records: captured(), cart, rule, stats: stats() }}));
    """
    # WHEN it sends 6 metrics and one invalid one, prints what was captured and ends without flush() or close()
    child = _run_node(script, pipeline, tmp_path, namespace, env_overrides={"METRICBATCH_MODE": "memory"})
    # THEN it exited by itself with nothing on stderr, and captured() holds every call, in order, exactly as sent
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["records"] == [
        {
            "namespace": namespace,
            "name": "Orders",
            "value": i,
            "unit": "Count",
            "dimensions": {"Service": "web" if i % 2 else "cart"},
            "timestamp": minute,
            "storageResolution": 60,
        }
        for i in range(6)
    ]
    assert (out["cart"], out["rule"]) == ([0, 2, 4], "value.finite")
    stats = out["stats"]
    assert (stats["mode"], stats["modeReason"], stats["captured"], stats["invalid"]) == ("memory", "", 6, 1)
    assert (stats["accepted"], stats["sent"], stats["discarded"], stats["buffered"]) == (6, 0, 0, 0)
    # AND the embedded AWS saw no SQS or CloudWatch request at all
    calls = pipeline.aws.ledger.snapshot()["calls"]
    assert [name for name in calls if name.startswith(("sqs:", "cloudwatch:"))] == []


# -- issue 24: default dimensions, roll-ups and instrumentClient from Node ------------------------------------------
def test_node_default_dimensions_rollups_and_instrumented_sqs_read_back_exactly(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    namespace = f"E2E/NodeSdk{time.monotonic_ns()}"
    sdk_package = (NODE_PACKAGE / "package.json").as_uri()
    script = f"""
        import {{ createRequire }} from "node:module";
        import {{ MetricProducer, instrumentClient }} from "{node_entry}";
        const {{ SQSClient, CreateQueueCommand, SendMessageCommand, ListQueuesCommand }} =
          createRequire("{sdk_package}")("@aws-sdk/client-sqs");
        const producer = new MetricProducer();  // default dimensions from METRICBATCH_DEFAULT_DIMENSIONS
        for (let i = 0; i < 30; i++)
          producer.sendMetric("Orders", 0.5, {{ dimensions: {{ Route: `/r${{i % 3}}` }}, rollups: [["Service"], []] }});
        const sqs = new SQSClient({{ maxAttempts: 3 }});
        instrumentClient(sqs, {{ producer, namespace: "{namespace}" }});
        instrumentClient(sqs, {{ producer, namespace: "{namespace}" }});  // twice: counted once
        const QueueName = "node-work-{time.monotonic_ns()}";
        const {{ QueueUrl }} = await sqs.send(new CreateQueueCommand({{ QueueName }}));
        for (let i = 0; i < 3; i++) await sqs.send(new SendMessageCommand({{ QueueUrl, MessageBody: "m" }}));
        let failed = false;
        try {{ await sqs.send(new ListQueuesCommand({{}})); }} catch {{ failed = true; }}
        const flushed = await producer.flush(30000);
        await producer.close();
        console.log(JSON.stringify({{ flushed, failed }}));
    """
    # GIVEN one SendMessage throttled once and every attempt of one ListQueues failing with 503
    pipeline.aws.faults.add(Fault("sqs:SendMessage", "throttle", remaining=1))
    pipeline.aws.faults.add(Fault("sqs:ListQueues", "unavailable", remaining=3))
    child = _run_node(
        script, pipeline, tmp_path, namespace, env_overrides={"METRICBATCH_DEFAULT_DIMENSIONS": "Service=cart"}
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report == {"flushed": True, "failed": True}
    assert pipeline.aws.faults.injected["sqs:SendMessage"] == 1
    assert pipeline.aws.faults.injected["sqs:ListQueues"] == 3
    pipeline.drain()
    # THEN the roll-ups read back exactly under every set, with the default dimension
    for route in ("/r0", "/r1", "/r2"):
        assert _delivered(pipeline, namespace, "Orders", {"Service": "cart", "Route": route}) == (5.0, 10)
    assert _delivered(pipeline, namespace, "Orders", {"Service": "cart"}) == (15.0, 30)
    assert _delivered(pipeline, namespace, "Orders", {}) == (15.0, 30)
    # AND the SDK calls: counts per operation, successes, retries, the failure's ErrorType (plus the default dimension)

    def sdk(name: str, operation: str, **extra: str) -> tuple[float, float]:
        dims = {"Service": "cart", "ServiceId": "SQS", "OperationName": operation, **extra}
        return _delivered(pipeline, namespace, name, dims)

    assert sdk("ApiCallSuccessful", "SendMessage") == (3.0, 3)
    assert sdk("RetryCount", "SendMessage") == (1.0, 3)
    assert sdk("ApiCallDuration", "SendMessage")[1] == 3
    assert sdk("ApiCallSuccessful", "CreateQueue") == (1.0, 1)
    assert sdk("ApiCallSuccessful", "ListQueues") == (0.0, 1)
    assert sdk("ApiCallSuccessful", "ListQueues", ErrorType="ServerError") == (0.0, 1)
    assert sdk("RetryCount", "ListQueues", ErrorType="ServerError") == (2.0, 1)
    assert pipeline.aws.ledger.rejections == []


CLUSTER = """
    import cluster from "node:cluster";
    import {{ openSync, writeSync }} from "node:fs";
    import {{ sendMetric }} from "{entry}";

    const WORKERS = 2;
    if (cluster.isPrimary) {{
      let ready = 0;
      const exits = [];
      cluster.on("message", () => {{
        if (++ready === WORKERS) {{
          // both are under load: stop them as a supervisor does, mid-load
          setTimeout(() => {{ for (const w of Object.values(cluster.workers)) w.process.kill("SIGTERM"); }}, 1500);
        }}
      }});
      cluster.on("exit", (worker, code, signal) => {{
        exits.push({{ pid: worker.process.pid, code, signal }});
        if (exits.length === WORKERS) console.log(JSON.stringify(exits));
      }});
      for (let i = 0; i < WORKERS; i++) cluster.fork();
    }} else {{
      // The tally file holds the number of sendMetric calls made so far, written after each slice of calls; a signal
      // is handled between slices, so it is exact whenever the process can end.
      const tally = openSync(`tally-${{process.pid}}`, "w");
      const count = Buffer.alloc(8);
      const dimensions = {{ Pid: String(process.pid) }};
      let calls = 0;
      const serve = () => {{
        for (let i = 0; i < 100; i++) sendMetric("Calls", 1, {{ unit: "Count", dimensions }});
        calls += 100;
        count.writeBigInt64LE(BigInt(calls));
        writeSync(tally, count, 0, 8, 0);
        setTimeout(serve, 1);  // yield to the event loop between slices, as a server between requests
      }};
      serve();
      process.send("serving");
    }}
"""


def test_cluster_workers_stopped_by_sigterm_mid_load_deliver_everything_they_accepted(
    pipeline: LocalPipeline, tmp_path: Path, node_entry: str
) -> None:
    # GIVEN a node:cluster primary with 2 workers that send metrics continuously, tallying every call
    namespace = f"E2E/NodeCluster{time.monotonic_ns()}"
    path = tmp_path / "cluster.mjs"
    path.write_text(textwrap.dedent(CLUSTER.format(entry=node_entry)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_"))}
    env.update({**pipeline.env(), "METRICBATCH_NAMESPACE": namespace})
    # WHEN the primary kills each worker with SIGTERM while it is still sending
    child = subprocess.run(
        ["node", str(path)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    assert child.returncode == 0, child.stderr
    exits = json.loads(child.stdout.strip().splitlines()[-1])
    # THEN each worker died of SIGTERM, as it would have without the library
    assert [e["signal"] for e in exits] == ["SIGTERM", "SIGTERM"], exits
    # AND every metric each worker accepted reached CloudWatch, exactly
    pipeline.drain()
    for worker in exits:
        calls = int.from_bytes((tmp_path / f"tally-{worker['pid']}").read_bytes(), "little")
        assert calls > 1000, calls  # it really was under load
        got = _delivered(pipeline, namespace, "Calls", {"Pid": str(worker["pid"])})
        assert got == (float(calls), float(calls)), (worker, calls, got, child.stderr[-2000:])
    assert "dropped" not in child.stderr

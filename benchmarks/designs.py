"""The six designs, each run for real: the four with API calls against the embedded AWS over HTTP (counted by the
gateway's ledger), the two EMF designs by writing their documents and counting the bytes they wrote."""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workloads import Metric, Workload
from metricbatch.batcher.self_metrics import METRICS_PUBLISHED, SERVICE_DIMENSION, api_calls_saved
from metricbatch.cli.costs import OLD_BATCHER_DATUMS_PER_CALL, DesignCost, gb_seconds, log_bytes
from metricbatch.emulator.local_pipeline import LOCAL_SERVICE_NAME, LocalPipeline
from metricbatch.env import SELF_METRICS_NAMESPACE
from metricbatch.limits import MAX_SQS_RECEIVE_MESSAGES, SQS_BILLING_CHUNK_BYTES
from metricbatch.producer.producer import MetricProducer
from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller

DIRECT_SAMPLE_CALLS = 2_000  # direct and naive designs: run this many metrics for real, scale to the workload
NAIVE_CHUNK = 20  # metrics sent to the naive queue between synchronous drains (one full batch)
NAIVE_SAMPLE_METRICS = 1_000  # moto's SQS is slow per request: run this many, scale
DESIGN_OPERATIONS = ("sqs:SendMessage", "sqs:SendMessageBatch", "sqs:ReceiveMessage", "sqs:DeleteMessageBatch",
                     "sqs:DeleteMessage", "cloudwatch:PutMetricData")  # fmt: skip


class BilledLedger:
    """Per-operation billed SQS requests (64 KiB chunks), alongside the gateway's own ledger."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self.ledger = pipeline.aws.ledger
        self.billed: Counter[str] = Counter()
        original = self.ledger.record
        lock = threading.Lock()

        def record(operation: str, request_size: int, response_size: int, status: int) -> None:
            original(operation, request_size, response_size, status)
            if operation.startswith("sqs:"):
                with lock:
                    chunks = max(1, math.ceil(max(request_size, response_size) / SQS_BILLING_CHUNK_BYTES))
                    self.billed[operation] += chunks

        self.ledger.record = record

    def reset(self) -> None:
        self.ledger.reset()
        self.billed.clear()

    def counts(self) -> dict[str, Any]:
        snap = self.ledger.snapshot()
        ops = {op: snap["calls"].get(op, 0) for op in DESIGN_OPERATIONS if snap["calls"].get(op, 0)}
        return {
            "calls": ops,
            "request_bytes": {op: snap["request_bytes"].get(op, 0) for op in ops},
            "sqs_billed": sum(self.billed.get(op, 0) for op in DESIGN_OPERATIONS if op.startswith("sqs:")),
            "put_metric_data": snap["calls"].get("cloudwatch:PutMetricData", 0),
            "put_metric_data_errors": snap["errors"].get("cloudwatch:PutMetricData", 0),
        }


@dataclass
class DesignRun:
    design: str
    label: str
    metrics_run: int  # metrics actually sent through the design
    metrics_total: int  # the workload's size (scaled to it when a sample ran)
    counts: dict[str, Any]
    handler_seconds: float = 0.0
    invocations: int = 0
    wall_seconds: float = 0.0
    memory_mb: int = 256
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> DesignCost:
        return DesignCost(
            self.design,
            put_metric_data_calls=float(self.counts["put_metric_data"]),
            sqs_requests=float(self.counts["sqs_billed"]),
            lambda_invocations=float(self.invocations),
            lambda_gb_seconds=gb_seconds(self.handler_seconds, self.memory_mb),
            log_bytes=float(self.counts.get("log_bytes", 0.0)),
        )

    @property
    def per_million(self) -> DesignCost:
        return self.cost.scaled(1_000_000 / self.metrics_run)

    @property
    def api_calls_saved_per_million(self) -> float:
        """The batcher's definition (samples published less PutMetricData calls), per million metrics. Designs
        without a batcher publish every metric they send; metricbatch's figure is its own self-metrics'."""
        published = float(self.counts.get("metrics_published", self.metrics_run))
        return api_calls_saved(published, float(self.counts["put_metric_data"])) * 1_000_000 / self.metrics_run


def _datum(metric: Metric) -> dict[str, Any]:
    _, name, unit, dims, value = metric
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())],
        "Value": value,
        "Unit": unit,
        "Timestamp": int(time.time()),
    }


def run_direct(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    ledger.reset()
    sample = workload.metrics[:DIRECT_SAMPLE_CALLS]
    started = time.perf_counter()
    for metric in sample:
        pipeline.cloudwatch.put_metric_data(Namespace=metric[0], MetricData=[_datum(metric)])
    run = DesignRun("direct", "1 direct: one PutMetricData per metric", len(sample), len(workload), ledger.counts())
    run.wall_seconds = time.perf_counter() - started
    if len(sample) < len(workload):
        run.notes.append(f"ran {len(sample):,} of {len(workload):,} metrics for real, scaled")
    return run


def run_old_batcher(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    """The in-process batcher: 20 datums per call, one namespace per call, flushed every 30 s (one window here)."""
    ledger.reset()
    started = time.perf_counter()
    by_namespace: dict[str, list[Metric]] = {}
    for metric in workload.metrics:
        by_namespace.setdefault(metric[0], []).append(metric)
    for namespace, metrics in by_namespace.items():
        for i in range(0, len(metrics), OLD_BATCHER_DATUMS_PER_CALL):
            chunk = metrics[i : i + OLD_BATCHER_DATUMS_PER_CALL]
            pipeline.cloudwatch.put_metric_data(Namespace=namespace, MetricData=[_datum(m) for m in chunk])
    run = DesignRun("old-batcher-20", "2 old batcher: 20 per call", len(workload), len(workload), ledger.counts())
    run.wall_seconds = time.perf_counter() - started
    run.notes.append("the workload fits one 30 s flush window: every call carries 20 datums (its best case)")
    return run


def naive_handler(cloudwatch: Any) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for record in event["Records"]:
            body = json.loads(record["body"])
            by_namespace.setdefault(body["Namespace"], []).append(body["Datum"])
        for namespace, data in by_namespace.items():
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
        return {"batchItemFailures": []}

    return handler


def drain_full_batches(poller: SqsEventSourcePoller, sqs: Any, queue_url: str) -> None:
    """Invoke with batches filled to the batch size (and under 6 MB) until the queue is empty, synchronously.

    (``poller.drain()`` closes a batch after one ReceiveMessage, i.e. at 10 messages; Lambda fills it to 20.)
    """
    carry: list[dict[str, Any]] = []
    while True:
        messages, payload = carry, sum(len(m["Body"]) for m in carry)
        carry = []
        while len(messages) < poller.config.batch_size:
            got = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(MAX_SQS_RECEIVE_MESSAGES, poller.config.batch_size - len(messages)),
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            for message in got:
                size = len(message["Body"].encode())
                if messages and payload + size > poller.config.max_payload_bytes:
                    carry.append(message)
                    continue
                messages.append(message)
                payload += size
            if carry:
                break
        if not messages:
            return
        poller.invoke(messages)


def run_naive_queue(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    sqs = pipeline.sqs
    queue_url = sqs.create_queue(QueueName=f"naive-{workload.name}")["QueueUrl"]
    poller = SqsEventSourcePoller(
        sqs,
        queue_url,
        naive_handler(pipeline.cloudwatch),
        config=PollerConfig(batch_size=20, window_seconds=0, memory_mb=pipeline.settings.function_memory_mb),
    )
    ledger.reset()
    sample = workload.metrics[:NAIVE_SAMPLE_METRICS]
    started = time.perf_counter()
    # Consume while sending, as Lambda does: moto's SQS slows down with every message a queue holds.
    for start in range(0, len(sample), NAIVE_CHUNK):
        for metric in sample[start : start + NAIVE_CHUNK]:
            body = json.dumps({"Namespace": metric[0], "Datum": _datum(metric)})
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        drain_full_batches(poller, sqs, queue_url)
    run = DesignRun("naive-queue", "3 naive queue: 1 metric/message", len(sample), len(workload), ledger.counts())
    run.wall_seconds = time.perf_counter() - started
    run.handler_seconds = poller.stats.handler_seconds
    run.invocations = poller.stats.invocations
    run.memory_mb = poller.config.memory_mb
    if len(sample) < len(workload):
        run.notes.append(f"ran {len(sample):,} of {len(workload):,} metrics for real, scaled")
    return run


def _produce(
    pipeline: LocalPipeline,
    workload: Workload,
    producers: int = 4,
    make: Callable[[], MetricProducer] | None = None,
) -> list[Any]:
    """Send the workload through ``producers`` MetricProducers (one per simulated service) at the workload's rate."""
    clients = [(make or (lambda: pipeline.producer(handle_sigterm=False)))() for _ in range(producers)]
    shares = [workload.metrics[i::producers] for i in range(producers)]

    def service(index: int) -> None:
        producer, metrics = clients[index], shares[index]
        rate = workload.rate / producers if workload.rate else None
        burst = workload.burst // producers if workload.burst else 0
        started = time.perf_counter()
        for i, (namespace, name, unit, dims, value) in enumerate(metrics):
            producer.send_metric(name, value, unit=unit, namespace=namespace, dimensions=dims)
            if rate and i % 100 == 99:
                ahead = started + (i + 1) / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            elif burst and i % burst == burst - 1:
                time.sleep(1.0)

    threads = [threading.Thread(target=service, args=(i,)) for i in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for producer in clients:
        producer.close(timeout=60)
    return clients


def run_metricbatch(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    poller = pipeline.poller
    before_seconds, before_invocations = poller.stats.handler_seconds, poller.stats.invocations
    published_before = _self_metric(pipeline, METRICS_PUBLISHED)
    ledger.reset()
    started = time.perf_counter()
    producers = _produce(pipeline, workload)
    drain_full_batches(poller, pipeline.sqs, pipeline.queue_url)
    run = DesignRun("metricbatch", "4 metricbatch (defaults)", len(workload), len(workload), ledger.counts())
    run.wall_seconds = time.perf_counter() - started
    run.handler_seconds = poller.stats.handler_seconds - before_seconds
    run.invocations = poller.stats.invocations - before_invocations
    run.memory_mb = pipeline.settings.function_memory_mb
    stats = [p.stats() for p in producers]
    run.counts["producer"] = {k: sum(s[k] for s in stats) for k in ("sent", "dropped", "fallback_published")}
    run.counts["messages"] = sum(s["messages_sent"] for s in stats)
    # Measured what it says: wire bytes from the producers' own count of the bodies SQS accepted.
    run.counts["wire_bytes_per_metric"] = sum(s["wire_bytes"] for s in stats) / max(1, run.counts["producer"]["sent"])
    # What the batcher says it published (EMF self-metrics, extracted into the embedded CloudWatch)
    run.counts["metrics_published"] = _self_metric(pipeline, METRICS_PUBLISHED) - published_before
    if run.counts["metrics_published"] != len(workload):
        run.notes.append(f"the batcher published {run.counts['metrics_published']:,.0f} of {len(workload):,}")
    if run.counts["producer"]["sent"] != len(workload):
        run.notes.append(f"producer stats: {run.counts['producer']}")
    run.notes.append("handler seconds include the embedded AWS answering its calls in the same process")
    return run


def _self_metric(pipeline: LocalPipeline, name: str) -> float:
    return pipeline.read_series(SELF_METRICS_NAMESPACE, name, {SERVICE_DIMENSION: LOCAL_SERVICE_NAME})[0]


def _emf_totals(text: str) -> tuple[int, int, int]:
    """(documents, bytes of the documents, samples they carry), each line parsed: stdout as a log driver sees it,
    every line one log event (the newline is not part of the event)."""
    documents = payload = samples = 0
    for line in text.splitlines():
        document = json.loads(line)
        documents += 1
        payload += len(line.encode())
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                target = document[metric["Name"]]
                samples += len(target) if isinstance(target, list) else 1
    return documents, payload, samples


def _emf_run(design: str, label: str, workload: Workload, text: str, counts: dict[str, Any]) -> DesignRun:
    documents, payload, samples = _emf_totals(text)
    counts.update(log_documents=documents, log_payload_bytes=payload, log_bytes=log_bytes(payload, documents))
    counts["log_bytes_per_metric"] = counts["log_bytes"] / len(workload)
    run = DesignRun(design, label, len(workload), len(workload), counts)
    # Measured what it says: the documents written hold every metric once, and no API call was made.
    if samples != len(workload):
        run.notes.append(f"the documents hold {samples:,} samples of {len(workload):,}")
    if counts["put_metric_data"] or counts["sqs_billed"]:
        run.notes.append(f"made API calls: {counts['calls']}")
    return run


def run_emf_per_request(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    """One EMF document per request, written by Powertools Metrics itself (``flush_metrics`` at the end of each
    invocation, as ``log_metrics`` does): every metric of the workload is one request's metric with its own
    dimensions, which the library writes as a document of its own."""
    from aws_lambda_powertools import Metrics

    ledger.reset()
    writers: dict[str, Metrics] = {}
    stream = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(stream), warnings_silenced():
        for namespace, name, unit, dims, value in workload.metrics:
            metrics = writers.get(namespace) or writers.setdefault(namespace, Metrics(namespace=namespace))
            for key, dim_value in dims.items():
                metrics.add_dimension(name=key, value=dim_value)
            metrics.add_metric(name=name, unit=unit, value=value)
            metrics.flush_metrics()
    wall = time.perf_counter() - started
    run = _emf_run("emf-per-request", "5 EMF, a document per request", workload, stream.getvalue(), ledger.counts())
    run.wall_seconds = wall
    run.notes.append("written by aws-lambda-powertools Metrics (flush per request), stdout captured")
    return run


def run_emf_aggregated(pipeline: LocalPipeline, ledger: BilledLedger, workload: Workload) -> DesignRun:
    """metricbatch's emf mode: the same four producers at the workload's rate, writing EMF lines instead of SQS."""
    streams: list[io.StringIO] = []

    def make() -> MetricProducer:
        streams.append(io.StringIO())
        return MetricProducer(mode="emf", emf_stream=streams[-1], handle_sigterm=False)

    ledger.reset()
    started = time.perf_counter()
    producers = _produce(pipeline, workload, make=make)
    wall = time.perf_counter() - started
    text = "".join(stream.getvalue() for stream in streams)
    run = _emf_run("emf-aggregated", "6 EMF aggregated (emf mode)", workload, text, ledger.counts())
    run.wall_seconds = wall
    published = sum(p.stats()["emf_published"] for p in producers)
    if published != len(workload):
        run.notes.append(f"emf mode wrote {published:,} of {len(workload):,}")
    return run


@contextlib.contextmanager
def warnings_silenced() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


DESIGNS = (run_direct, run_old_batcher, run_naive_queue, run_metricbatch, run_emf_per_request, run_emf_aggregated)

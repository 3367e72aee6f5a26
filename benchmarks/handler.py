"""The batcher handler on full batches, network stubbed, against its floor: CPU per original metric.

Floor: ``json.loads`` of the bodies producers sent so far (one wire entry per metric) plus ``json.dumps`` of the
PutMetricData payloads the batch becomes, the least any batcher in Python must do. The handler runs as Lambda runs
it (Powertools, validation, merging, packing, boto3 serialization with the production client settings, EMF) on
two encodings of the same metrics: the old one (one wire entry per metric) and the aggregated one (``values`` and
``counts`` per series and minute, as producers that aggregate send). Before printing a figure it checks that it
measured real work: fresh message ids every run (no duplicate skipped), the production client settings, and every
sample sent was in a PutMetricData request.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ParamValidationError

from metricbatch.batcher.self_metrics import DUPLICATE_MESSAGES_SKIPPED, METRICS_PUBLISHED
from metricbatch.cloudwatch.aggregation import DatumAggregator
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.validation import Series
from metricbatch.wire import datum_to_wire, envelope_of, metric_fragment, metric_json, metric_prefix

MESSAGES = 20  # the pipeline's batch size
METRICS_PER_MESSAGE = 1000  # about one second of a busy service per message
SERIES = 100
NAMESPACE = "Bench/Handler"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:bench"


class BenchmarkError(RuntimeError):
    """The benchmark did not measure what it says; no figure is printed."""


# -- the metrics, in both encodings -----------------------------------------------------------------------------------
def _samples(now: float) -> list[list[tuple[Series, float, float]]]:
    """MESSAGES x METRICS_PER_MESSAGE samples over SERIES series (seeded): (series, value, timestamp)."""
    rng = random.Random(11)
    series = [
        Series(NAMESPACE, f"Op{s % 8}", (("Service", "cart"), ("Table", f"t{s}")), "Milliseconds", 60)
        for s in range(SERIES)
    ]
    return [
        [(series[rng.randrange(SERIES)], round(rng.lognormvariate(2.5, 0.6), 1), now - rng.uniform(0, 5))
         for _ in range(METRICS_PER_MESSAGE)]
        for _ in range(MESSAGES)
    ]  # fmt: skip


def old_format(messages: list[list[tuple[Series, float, float]]]) -> list[str]:
    """One wire entry per metric, as producers wrote them before aggregating."""
    prefixes = {s: metric_prefix(*s) for message in messages for s, _, _ in message}
    return [envelope_of([metric_fragment(prefixes[s], v, ts) for s, v, ts in message]) for message in messages]


def aggregated_format(messages: list[list[tuple[Series, float, float]]]) -> list[str]:
    """Per message, one wire entry per series and minute with ``values``/``counts`` (<= 150 values each), the
    timestamp snapped to the minute: what an aggregating producer sends."""
    bodies = []
    for message in messages:
        aggregator = DatumAggregator()
        aggregator.add_all(((series, ts - ts % series.resolution, [value], None) for series, value, ts in message), 0)
        fragments = [metric_json(datum_to_wire(d.series, d.timestamp, d.values, d.counts)) for d in aggregator.datums()]
        bodies.append(envelope_of(fragments))
    return bodies


def _event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event as the event source mapping builds it, with message ids never seen before."""
    from metricbatch.worker.poller import build_record

    now = str(int(time.time() * 1000))
    messages = [
        {"MessageId": str(uuid.uuid4()), "ReceiptHandle": f"r{i}", "Body": body, "Attributes": {"SentTimestamp": now}}
        for i, body in enumerate(bodies)
    ]
    return {"Records": [build_record(m, queue_arn=QUEUE_ARN, region="us-east-1") for m in messages]}


# -- clients: production settings, HTTP short-circuited ----------------------------------------------------------------
class StubbedNetwork:
    """Answers every request of the clients it is registered on with an empty 200 and keeps the request bodies."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.compressed = 0  # PutMetricData requests sent gzipped

    def register(self, client: Any, service: str) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        class _Raw:
            def __init__(self, body: bytes) -> None:
                self._body = body

            def stream(self, **_: Any) -> Any:
                yield self._body

            def read(self, *_: Any) -> bytes:
                return self._body

        answer = b'{"Successful":[],"Failed":[]}' if service == "sqs" else b"{}"

        def respond(request: Any, **_: Any) -> AWSResponse:
            if service == "cloudwatch":
                self.bodies.append(request.body)
                self.compressed += "Content-Encoding" in request.headers
            headers = HTTPHeaders()
            headers["Content-Type"] = "application/x-amz-json-1.0"
            return AWSResponse(request.url, 200, headers, _Raw(answer))

        client.meta.events.register("before-send", respond)
        return client

    def published_samples(self) -> float:
        samples = 0.0
        for body in self.bodies:
            for datum in json.loads(body)["MetricData"]:
                samples += sum(datum.get("Counts", [1.0] * len(datum["Values"]))) if "Values" in datum else 1.0
        return samples


def _production_clients(network: StubbedNetwork) -> Callable[[str], Any]:
    from metricbatch.batcher.handler import create_client

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    def factory(service: str) -> Any:
        client = network.register(create_client(service), service)  # the handler's settings, not botocore's defaults
        if service == "cloudwatch":
            try:  # client-side validation is off in production: an invalid parameter gets past it
                client.put_metric_data(Namespace=NAMESPACE, MetricData="not a list")
            except ParamValidationError:
                raise BenchmarkError("the CloudWatch client validates parameters; production does not") from None
            except Exception:
                pass
        return client

    return factory


# -- measuring ---------------------------------------------------------------------------------------------------
def _emf_sum(document: dict[str, Any], name: str) -> float:
    value = document.get(name, 0.0)
    return float(sum(value) if isinstance(value, list) else value)


def _cpu(fn: Callable[[], Any]) -> float:
    gc.collect()
    started = time.process_time()
    fn()
    return time.process_time() - started


class _HandlerRuns:
    """The real handler (one sandbox: state kept between invocations) on one encoding; each call is a fresh batch."""

    def __init__(self, bodies: list[str], sent_samples: int) -> None:
        from metricbatch.batcher.handler import BatcherFunction

        self.bodies, self.sent_samples = bodies, sent_samples
        self.network = StubbedNetwork()
        self.function = BatcherFunction(client_factory=_production_clients(self.network))
        self.runs: list[dict[str, Any]] = []

    def __call__(self) -> None:
        from metricbatch.worker.poller import LambdaContext

        self.network.bodies.clear()
        context = LambdaContext(function_name="bench", memory_mb=256, timeout_seconds=60, region="us-east-1")
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):  # the EMF line and the log lines
            response = self.function(_event(self.bodies), context)
        self.runs.append({"response": response, "output": captured.getvalue(), "published": len(self.network.bodies)})

    def verify(self) -> None:
        """Did every run do the work? No failure, nothing skipped as a duplicate, every sample in a request."""
        for run in self.runs:
            emf = next(json.loads(line) for line in run["output"].splitlines() if '"_aws"' in line)
            skipped, published = _emf_sum(emf, DUPLICATE_MESSAGES_SKIPPED), _emf_sum(emf, METRICS_PUBLISHED)
            if run["response"] != {"batchItemFailures": []} or skipped:
                raise BenchmarkError(f"a run did not publish the batch: {run['response']}, {skipped} duplicates")
            if published != self.sent_samples:
                raise BenchmarkError(f"a run published {published} of {self.sent_samples} samples")
        if self.network.compressed:
            raise BenchmarkError("PutMetricData requests were gzipped; production sends them plain")
        if self.network.published_samples() != self.sent_samples:
            raise BenchmarkError(f"the requests carried {self.network.published_samples()} of {self.sent_samples}")

    def peak_memory_mb(self) -> float:
        tracemalloc.start()
        self()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak / 1e6


def handler_vs_floor(rounds: int = 9) -> dict[str, Any]:
    """CPU per original metric of the real handler on a full batch, in both encodings, against the floor.

    Shuffled rounds, each running the floor and every candidate once (the machine's speed swings within a second):
    figures are medians, and each ratio is the median of the per-round ratios to that round's floor.
    """
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MetricBatch")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "metricbatch-bench")
    messages = _samples(time.time())
    metrics = sum(len(m) for m in messages)
    old_bodies, aggregated_bodies = old_format(messages), aggregated_format(messages)

    # The floor: parse what producers sent (one entry per metric), serialize the requests the batch becomes.
    aggregator = DatumAggregator()
    for message in messages:
        aggregator.add_all(((series, ts, [value], None) for series, value, ts in message), 0)
    payloads = [request.params() for request in pack_requests(aggregator.datums())]

    def floor() -> None:
        for body in old_bodies:
            json.loads(body)
        for params in payloads:
            json.dumps(params)

    def parse_aggregated() -> None:
        for body in aggregated_bodies:
            json.loads(body)

    handlers = {"old_format": _HandlerRuns(old_bodies, metrics), "aggregated": _HandlerRuns(aggregated_bodies, metrics)}
    candidates: dict[str, Callable[[], Any]] = {"floor": floor, "parse_aggregated": parse_aggregated, **handlers}
    for fn in candidates.values():
        fn()  # warm-up: imports, clients, caches
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    rng = random.Random(11)
    for _ in range(rounds):
        order = list(candidates)
        rng.shuffle(order)
        for name in order:
            seconds[name].append(_cpu(candidates[name]))
    peak_memory_mb = handlers["old_format"].peak_memory_mb()  # one more run, checked with the others below
    for runs in handlers.values():
        runs.verify()

    per = 1e6 / metrics
    result: dict[str, Any] = {
        "messages": len(old_bodies),
        "metrics": metrics,
        "rounds": rounds,
        "floor_us_per_metric": statistics.median(seconds["floor"]) * per,
        "aggregated_parse_us_per_metric": statistics.median(seconds["parse_aggregated"]) * per,
        "put_metric_data_payload_bytes": sum(len(json.dumps(p)) for p in payloads),
        "handler_peak_memory_mb": peak_memory_mb,
    }
    for name, bodies in (("old_format", old_bodies), ("aggregated", aggregated_bodies)):
        ratios = [s / f for s, f in zip(seconds[name], seconds["floor"], strict=True)]
        result[name] = {
            "body_bytes": sum(len(b) for b in bodies),
            "wire_entries": sum(len(json.loads(b)["metrics"]) for b in bodies),
            "put_metric_data_requests": handlers[name].runs[-1]["published"],
            "handler_us_per_metric": statistics.median(seconds[name]) * per,
            "handler_over_floor": statistics.median(ratios),
            "handler_over_floor_range": [min(ratios), max(ratios)],
        }
    return result


if __name__ == "__main__":
    print(json.dumps(handler_vs_floor(), indent=2))

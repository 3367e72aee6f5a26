"""The whole pipeline in one process: embedded AWS, the dev stack's queues, the real handler behind a poller."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import metricbatch
from metricbatch.deploy import PipelineSettings, settings_for
from metricbatch.emulator.assembly import (
    FunctionDefinition,
    differing_sources,
    queue_refs,
    read_function,
    stack_template,
)
from metricbatch.emulator.embedded import EmbeddedAws, PipelineQueues
from metricbatch.emulator.emf import EmfExtractor
from metricbatch.emulator.gateway import EMF_AGENT_MARK
from metricbatch.emulator.lambda_runner import RUNTIME_CLIENT_DISTRIBUTION, FunctionSpec, LocalLambdaFunction
from metricbatch.emulator.service_metrics import LambdaServiceMetrics
from metricbatch.env import (
    ALLOWED_NAMESPACES,
    DLQ_URL,
    LOCAL_ASSEMBLY,
    MODE,
    NAMESPACE,
    POWERTOOLS_LOG_LEVEL,
    POWERTOOLS_METRICS_NAMESPACE,
    POWERTOOLS_SERVICE_NAME,
    QUEUE_URL,
    QUEUE_URLS,
    ROUND_SECONDS,
)
from metricbatch.producer.producer import MetricProducer
from metricbatch.worker.poller import PollerConfig, SqsEventSourcePoller

if TYPE_CHECKING:  # the dashboard (numpy, matplotlib) is imported only when a picture is asked for
    from metricbatch.dashboard.body import LocalNames

LOCAL_SERVICE_NAME = "metricbatch-local"
# The default namespace env() hands to services (METRICBATCH_NAMESPACE), so `metricbatch send NAME VALUE` just works.
LOCAL_NAMESPACE = "Local/App"

# Where `make synth` writes the dev stack's cloud assembly; `metricbatch demo` and `local` run its batcher if present.
DEFAULT_ASSEMBLY = Path("cdk.out") / "dev"


def find_assembly(explicit: str | Path | None = None, *, in_process: bool = False) -> Path | None:
    """The cloud assembly to run the batcher from: ``explicit``, else METRICBATCH_LOCAL_ASSEMBLY, else ./cdk.out/dev
    when it was synthesized; None (the in-process handler) when ``in_process`` or there is none (a pip install)."""
    if in_process:
        return None
    chosen = explicit or os.environ.get(LOCAL_ASSEMBLY)
    if chosen:
        return Path(chosen)
    return DEFAULT_ASSEMBLY if (DEFAULT_ASSEMBLY / "manifest.json").is_file() else None


class LocalPipeline:
    """Start with ``with LocalPipeline() as pipeline:``; everything it starts is stopped on exit.

    With ``assembly`` (a cloud assembly folder, e.g. ``cdk.out/dev``) the batcher runs as Lambda runs it: the
    synthesized package under AWS's runtime interface client, in sandbox processes, with the template's Handler,
    environment (queue refs resolved to the local queues), Timeout, MemorySize, and the event source's BatchSize,
    MaximumBatchingWindowInSeconds and MaximumConcurrency (explicit arguments win). Without it the handler runs in
    this process from the source tree, with the environment Lambda would give it (set while the pipeline runs,
    restored afterwards). boto3 everywhere reaches the embedded AWS through the standard AWS_ENDPOINT_URL.
    """

    def __init__(
        self,
        *,
        settings: PipelineSettings | None = None,
        batch_size: int | None = None,
        window_seconds: float | None = None,
        concurrency: int | None = None,
        allowed_namespaces: Iterable[str] | None = None,
        function_timeout_seconds: float | None = None,
        port: int = 0,
        strict: bool = True,
        queue_name: str = "metricbatch",
        namespace: str = LOCAL_NAMESPACE,
        assembly: Path | str | None = None,
        log_sink: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings or settings_for("dev")
        self.aws = EmbeddedAws(port=port, strict=strict)
        self.function_definition: FunctionDefinition | None = read_function(assembly) if assembly else None
        self.assembly = Path(assembly) if assembly else None
        definition, settings = self.function_definition, self.settings
        source = definition.event_source if definition else None
        window = source.window_seconds if source else settings.batching_window_seconds
        self.poller_config = PollerConfig(
            batch_size=batch_size or (source.batch_size if source else settings.batch_size),
            window_seconds=window if window_seconds is None else window_seconds,
            function_timeout_seconds=function_timeout_seconds
            or (definition.timeout_seconds if definition else settings.function_timeout_seconds),
            memory_mb=definition.memory_mb if definition else settings.function_memory_mb,
            concurrency=concurrency or (source.max_concurrency if source and source.max_concurrency else 1),
        )
        self._explicit_namespaces = allowed_namespaces is not None
        allowed = self.settings.allowed_namespaces if allowed_namespaces is None else tuple(allowed_namespaces)
        self.allowed_namespaces = tuple(allowed)
        self._log_sink = log_sink
        self.function: LocalLambdaFunction | None = None
        self.queue_name = queue_name
        self.namespace = namespace
        self._saved_env: dict[str, str | None] = {}
        self._poller: SqsEventSourcePoller | None = None
        self._pollers: list[SqsEventSourcePoller] = []
        self._running = False
        self.sqs: Any = None
        self.cloudwatch: Any = None
        self.queues: PipelineQueues | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> LocalPipeline:
        try:
            return self._start()
        except BaseException:  # a pipeline that cannot start leaves nothing running and the environment as it was
            self.stop()
            raise

    def _start(self) -> LocalPipeline:
        self.aws.start()
        self.sqs = self.aws.client("sqs")
        self.cloudwatch = self.aws.client("cloudwatch")
        self.queues = PipelineQueues(self.sqs, name=self.queue_name, settings=self.settings)
        self._set_env(
            {
                **self.aws.env(),
                DLQ_URL: self.queues.dlq_url,
                QUEUE_URL: self.queues.queue_url,
                ALLOWED_NAMESPACES: ",".join(self.allowed_namespaces),
                POWERTOOLS_METRICS_NAMESPACE: self.settings.self_metrics_namespace,
                POWERTOOLS_SERVICE_NAME: LOCAL_SERVICE_NAME,
                POWERTOOLS_LOG_LEVEL: os.environ.get(POWERTOOLS_LOG_LEVEL, "WARNING"),
            }
        )
        emf_client = self.aws.client("cloudwatch", user_agent_extra=EMF_AGENT_MARK)
        self.lambda_metrics = LambdaServiceMetrics(emf_client, self.poller_config.function_name)
        self._emf_client = emf_client
        handler: Any
        if self.function_definition is not None:
            self.function = self._deployed_function(self.function_definition, EmfExtractor(emf_client))
            handler = self.function
        else:
            from metricbatch.batcher.handler import handler  # the same function Lambda runs
        # One event source mapping per shard queue, all invoking the same handler (as the stack does).
        self._pollers = [
            SqsEventSourcePoller(
                self.sqs,
                url,
                self.lambda_metrics.wrap(handler),
                config=self.poller_config,
                region=self.aws.region,
                emf_sink=EmfExtractor(emf_client),
            )
            for url in self.queues.queue_urls
        ]
        self._poller = self._pollers[0]
        return self

    def warm_batcher(self) -> float | None:
        """Start one sandbox of the deployed batcher now (else the first batch does): its init seconds, None when
        the batcher runs in-process. Raises FunctionInitError naming the handler if the package cannot start."""
        return self.function.warm() if self.function is not None else None

    def start_polling(self) -> None:
        """Run the event source mapping in background threads (like Lambda's pollers)."""
        for poller in self._pollers:
            poller.start()
        self._running = True

    def stop(self) -> None:
        if self._poller is not None and self._running:
            for poller in self._pollers:
                poller.stop()
            self._running = False
        if self.function is not None:
            self.function.stop()
        self.aws.stop()
        self._restore_env()

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _deployed_function(self, definition: FunctionDefinition, emf_sink: EmfExtractor) -> LocalLambdaFunction:
        assert self.queues is not None
        _, template = stack_template(definition.asset_dir.parent)
        environment = definition.resolved_environment(
            queue_refs(template, queue_url=self.queues.queue_url, dlq_url=self.queues.dlq_url)
        )
        if self._explicit_namespaces:
            environment[ALLOWED_NAMESPACES] = ",".join(self.allowed_namespaces)
        spec = FunctionSpec(
            name=definition.function_name,
            task_root=definition.asset_dir,
            handler=definition.handler,
            # How this machine reaches "AWS" (endpoint, region, dummy credentials); no ~/.aws of the developer's.
            environment={
                **environment,
                **self.aws.env(),
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            },
            timeout_seconds=self.poller_config.function_timeout_seconds,
            memory_mb=definition.memory_mb,
            region=self.aws.region,
            runtime=definition.runtime or "python3.13",
        )
        return LocalLambdaFunction(
            spec, max_concurrency=self.poller_config.concurrency, emf_sink=emf_sink, log_sink=self._log_sink
        )

    def describe_batcher(self) -> str:
        """How the batcher runs: the deployed package (which, under what) or in this process."""
        definition = self.function_definition
        if definition is None:
            return "in-process handler from the source tree (no cloud assembly)"
        version = importlib.metadata.version(RUNTIME_CLIENT_DISTRIBUTION)
        folder = definition.asset_dir.parent
        with contextlib.suppress(ValueError):
            folder = folder.relative_to(Path.cwd())
        asset = f"{folder}/{definition.asset_dir.name[:18]}…"  # asset.<sha256>: 12 hex digits are plenty
        stale = differing_sources(definition.asset_dir, Path(metricbatch.__file__).parent)
        warning = f"; STALE: {len(stale)} module(s) differ from {metricbatch.__name__}/, re-synthesize" if stale else ""
        return (
            f"the deployed package {asset} (Handler {definition.handler}, {RUNTIME_CLIENT_DISTRIBUTION} {version}, "
            f"up to {self.poller_config.concurrency} sandboxes{warning})"
        )

    # -- use ------------------------------------------------------------------------------------------------------
    @property
    def poller(self) -> SqsEventSourcePoller:
        assert self._poller is not None, "call start() first"
        return self._poller

    @property
    def queue_url(self) -> str:
        assert self.queues is not None
        return self.queues.queue_url

    @property
    def queue_urls(self) -> tuple[str, ...]:
        """Every shard's queue in shard order (one unless ``settings.shards`` > 1)."""
        assert self.queues is not None
        return self.queues.queue_urls

    @property
    def dlq_url(self) -> str:
        assert self.queues is not None
        return self.queues.dlq_url

    def producer(self, **options: Any) -> MetricProducer:
        """A producer wired to this pipeline's queue (fallback: this pipeline's CloudWatch), in mode sqs whatever
        METRICBATCH_MODE says."""
        options.setdefault("mode", "sqs")
        if len(self.queue_urls) > 1:  # sharded: the producer routes each series to its shard's queue
            options.setdefault("queue_urls", self.queue_urls)
        return MetricProducer(self.queue_url, sqs_client=self.sqs, cloudwatch_client=self.cloudwatch, **options)

    def drain(self, timeout: float = 120.0) -> None:
        """Process everything queued now, without sitting out a batching window (the producers are done)."""
        if self._running:
            self._poller_stop_and_drain(timeout)
        else:
            for poller in self._pollers:
                poller.drain(timeout=timeout)

    def finish_polling(self, timeout: float = 120.0) -> None:
        """Stop the background pollers and process everything left, in flight included, then poll no more."""
        if self._running:
            for poller in self._pollers:
                poller.stop(timeout=self.poller_config.function_timeout_seconds + 5)
            self._running = False
        for poller in self._pollers:
            poller.drain(timeout=timeout)

    def diagnostics(self) -> dict[str, Any]:
        """Where data can be when a run comes up short: queue, in flight, DLQ, poller and ledger counters."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        stats = self.poller.stats
        ledger = self.aws.ledger.snapshot()
        return {
            "queue_visible": int(attributes["ApproximateNumberOfMessages"]),
            "queue_in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "dlq": self.dlq_depth(),
            "invocations": stats.invocations,
            "batch_sizes": stats.batch_sizes,
            "item_failures": stats.item_failures,
            "batch_failures": stats.batch_failures,
            "ledger_errors": ledger["errors"],
            "rejections": ledger["rejections"][:5],
            "calls": ledger["calls"],
        }

    def _poller_stop_and_drain(self, timeout: float) -> None:
        # Let a batch the background pollers hold finish before draining, or it would look like an empty queue.
        for poller in self._pollers:
            poller.stop(timeout=self.poller_config.function_timeout_seconds + 5)
        for poller in self._pollers:
            poller.drain(timeout=timeout)
        for poller in self._pollers:
            poller.start()

    def queue_depth(self, queue_url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dlq_depth(self) -> int:
        return self.queue_depth(self.dlq_url)

    def read_series(
        self,
        namespace: str,
        name: str,
        dimensions: dict[str, str] | None = None,
        *,
        unit: str | None = None,
        since: float | None = None,
    ) -> tuple[float, float]:
        """(Sum, SampleCount) of one series as CloudWatch reports it."""
        now = time.time()
        start = since if since is not None else now - 3 * 3600
        params: dict[str, Any] = {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted((dimensions or {}).items())],
            "StartTime": start - 120,
            "EndTime": now + 600,
            "Period": 60 * 60 * 24,
            "Statistics": ["Sum", "SampleCount"],
        }
        if unit:
            params["Unit"] = unit
        points = self.cloudwatch.get_metric_statistics(**params)["Datapoints"]
        return sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)

    def publish_service_metrics(self) -> int:
        """Put the AWS/SQS message counts the gateway has seen since the last call into CloudWatch (AWS does it
        every minute); the number of datums. AWS/Lambda metrics are put at each invocation."""
        assert self.aws.gateway is not None, "call start() first"
        return self.aws.gateway.sqs_metrics.flush(self._emf_client)

    def dashboard_names(self) -> LocalNames:
        """What the deployed dashboard's queue, DLQ, function and service are called in this pipeline."""
        from metricbatch.dashboard.body import LocalNames

        assert self.queues is not None, "call start() first"
        return LocalNames(
            queue_name=self.queue_name,
            dlq_name=self.queues.dlq_url.rstrip("/").rsplit("/", 1)[-1],
            function_name=self.poller_config.function_name,
            region=self.aws.region,
            # the deployed package runs with the template's service name; the in-process handler with the local one
            service_name=None if self.function is not None else LOCAL_SERVICE_NAME,
        )

    def env(self) -> dict[str, str]:
        """What a service in another process exports to use this pipeline (``metricbatch local`` prints it)."""
        env = {**self.aws.env(), MODE: "sqs", QUEUE_URL: self.queue_url, NAMESPACE: self.namespace}
        if len(self.queue_urls) > 1:
            env[QUEUE_URLS] = ",".join(self.queue_urls)
            env[ROUND_SECONDS] = str(self.settings.producer_round_seconds)
        return env

    # -- environment ----------------------------------------------------------------------------------------------
    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

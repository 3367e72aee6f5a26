"""The cost model: dollars for the calls, requests and log bytes a design makes (prices in limits.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from metricbatch.limits import (
    LOG_EVENT_OVERHEAD_BYTES,
    LOGS_BYTES_PER_GB,
    MAX_DATUMS_PER_REQUEST,
    MAX_EMF_VALUES_PER_METRIC,
    MAX_LAMBDA_PAYLOAD_BYTES,
    MAX_REQUEST_BYTES,
    MAX_SQS_BATCH_ENTRIES,
    MAX_SQS_MESSAGE_BYTES,
    MAX_SQS_RECEIVE_MESSAGES,
    MAX_SQS_WAIT_SECONDS,
    MAX_VALUES_PER_DATUM,
    PRICE_CUSTOM_METRIC_MONTH,
    PRICE_LAMBDA_PER_GB_SECOND_ARM64,
    PRICE_LAMBDA_PER_REQUEST,
    PRICE_LOGS_INGESTION_PER_GB,
    PRICE_PUT_METRIC_DATA_PER_REQUEST,
    PRICE_SQS_PER_REQUEST,
    PUT_METRIC_DATA_TPS_QUOTA,
    SQS_BILLING_CHUNK_BYTES,
    SQS_MESSAGE_HEADROOM_BYTES,
    event_source_problems,
)

OLD_BATCHER_DATUMS_PER_CALL = 20  # the obsolete pre-2022 PutMetricData limit the TypeScript batcher used


@dataclass(frozen=True)
class DesignCost:
    """What one design makes for a workload, and what it costs."""

    design: str
    put_metric_data_calls: float
    sqs_requests: float = 0.0  # billed requests (64 KiB chunks), send + receive + delete
    lambda_invocations: float = 0.0
    lambda_gb_seconds: float = 0.0
    log_bytes: float = 0.0  # CloudWatch Logs ingestion (EMF designs), each event's 26 B overhead included

    @property
    def logs_dollars(self) -> float:
        return self.log_bytes / LOGS_BYTES_PER_GB * PRICE_LOGS_INGESTION_PER_GB

    @property
    def put_metric_data_dollars(self) -> float:
        return self.put_metric_data_calls * PRICE_PUT_METRIC_DATA_PER_REQUEST

    @property
    def sqs_dollars(self) -> float:
        return self.sqs_requests * PRICE_SQS_PER_REQUEST

    @property
    def lambda_dollars(self) -> float:
        return (
            self.lambda_invocations * PRICE_LAMBDA_PER_REQUEST
            + self.lambda_gb_seconds * PRICE_LAMBDA_PER_GB_SECOND_ARM64
        )

    @property
    def dollars(self) -> float:
        return self.put_metric_data_dollars + self.sqs_dollars + self.lambda_dollars + self.logs_dollars

    def scaled(self, factor: float) -> DesignCost:
        return DesignCost(
            design=self.design,
            put_metric_data_calls=self.put_metric_data_calls * factor,
            sqs_requests=self.sqs_requests * factor,
            lambda_invocations=self.lambda_invocations * factor,
            lambda_gb_seconds=self.lambda_gb_seconds * factor,
            log_bytes=self.log_bytes * factor,
        )

    def as_dict(self) -> dict[str, float | str]:
        return {**asdict(self), "dollars": self.dollars}


def direct_cost(metrics: int) -> DesignCost:
    """One PutMetricData call per metric."""
    return DesignCost("direct", put_metric_data_calls=float(metrics))


def old_batcher_cost(metrics: int) -> DesignCost:
    """The in-process batcher with the obsolete 20-datum limit (at best: every call full)."""
    return DesignCost("old-batcher-20", put_metric_data_calls=float(math.ceil(metrics / OLD_BATCHER_DATUMS_PER_CALL)))


def log_bytes(document_bytes: float, documents: float) -> float:
    """CloudWatch Logs ingestion of ``documents`` log events holding ``document_bytes`` in all: each event costs
    its UTF-8 bytes plus the 26 B per-event overhead."""
    return document_bytes + documents * LOG_EVENT_OVERHEAD_BYTES


def floor_put_metric_data_calls(series_minutes: float) -> float:
    """The physical floor of any design: one PutMetricData per 1,000 series-minutes (a request's 1,000 datums, one
    datum per series and minute), nothing else. Fractional: the floor of a workload that goes on."""
    return series_minutes / MAX_DATUMS_PER_REQUEST


def gb_seconds(handler_seconds: float, memory_mb: int) -> float:
    return handler_seconds * memory_mb / 1024.0


def per_million(cost: DesignCost, metrics: int) -> DesignCost:
    return cost.scaled(1_000_000 / metrics) if metrics else cost


# --- the planning model (``metricbatch plan``) ----------------------------------------------------------------------
# Hours per month as AWS's pricing calculator counts them (730 h).
SECONDS_PER_MONTH = 730 * 3600
# Wire format v1 as the producer writes it: one wire metric per series and bucket per round (its fixed part:
# namespace, name, unit, two dimensions, timestamp, measured ~150 B) plus each distinct value in it ("12.5," with
# its count when it repeats). The model takes every value as distinct: the worst case for merging.
WIRE_ENTRY_BYTES = 150
WIRE_VALUE_BYTES = 8
# Bytes one merged datum adds to a PutMetricData request: name, dimensions, timestamp, unit (measured ~150 B) ...
DATUM_BYTES = 150
# ... and each of its Values/Counts entries ("12.5, " + "1.0, ").
VALUE_BYTES = 20
# Handler cost model (measured by `make bench` on full batches; Lambda arm64 is in the same range).
HANDLER_FIXED_SECONDS = 0.02  # per invocation: PutMetricData and DeleteMessageBatch round trips, Powertools
HANDLER_SECONDS_PER_METRIC = 5e-6
# Lambda's SQS event source mapping keeps about five pollers long-polling (20 s) an idle queue; SQS bills empty
# receives too, so each design with a queue pays them whatever the traffic.
IDLE_POLLERS = 5
# A producer ships what it holds every flush interval, or sooner when a quarter of its bound is pending
# (ProducerConfig.flush_interval and wake_threshold defaults).
DEFAULT_FLUSH_INTERVAL_SECONDS = 5.0
PRODUCER_ROUND_SAMPLES = 25_000
# EMF designs, priced as CloudWatch Logs ingestion (bytes + 26 B per event) with no API call at all.
# One document per request, as Powertools Metrics (``log_metrics``/``single_metric``) and aws-embedded-metrics'
# ``metric_scope`` write one metric with two dimensions: 246 B with Powertools' own writer for DynamoDB.GetItem,
# Table, Service (make bench's mix of longer names averages 284 B).
EMF_PER_REQUEST_DOCUMENT_BYTES = 246
# metricbatch's emf mode: one document per series and round (the worst case: every series its own dimension set),
# its fixed part (_aws, timestamp, namespace, dimensions, name, unit) ~235 B, plus each sample as a value ("12.5,").
EMF_DOCUMENT_BYTES = 235
EMF_VALUE_BYTES = 7


@dataclass(frozen=True, kw_only=True)
class PlanInputs:
    """A workload and the pipeline's settings."""

    rate: float  # metrics per second, all producers together
    series: int  # distinct (namespace, name, dimensions, unit) combinations
    batch_size: int = 20
    window_seconds: float = 30.0
    producers: int = 1  # processes running a MetricProducer
    flush_interval_seconds: float = DEFAULT_FLUSH_INTERVAL_SECONDS
    memory_mb: int = 256
    wire_entry_bytes: int = WIRE_ENTRY_BYTES
    wire_value_bytes: int = WIRE_VALUE_BYTES
    handler_fixed_seconds: float = HANDLER_FIXED_SECONDS
    handler_seconds_per_metric: float = HANDLER_SECONDS_PER_METRIC
    # Issue 27: how many producers emit each series (default min(producers, DEFAULT_PRODUCERS_PER_SERIES)); with
    # several producers a producer holds only its share of the series, and the batcher sees partial aggregates.
    producers_per_series: int | None = None


@dataclass(frozen=True)
class DesignRates:
    """Steady-state request rates (per second) of one design and what they cost per month."""

    design: str
    put_metric_data_per_second: float
    sqs_billed_per_second: float = 0.0
    invocations_per_second: float = 0.0
    gb_seconds_per_second: float = 0.0
    log_bytes_per_second: float = 0.0

    @property
    def monthly(self) -> DesignCost:
        return DesignCost(
            self.design,
            put_metric_data_calls=self.put_metric_data_per_second * SECONDS_PER_MONTH,
            sqs_requests=self.sqs_billed_per_second * SECONDS_PER_MONTH,
            lambda_invocations=self.invocations_per_second * SECONDS_PER_MONTH,
            lambda_gb_seconds=self.gb_seconds_per_second * SECONDS_PER_MONTH,
            log_bytes=self.log_bytes_per_second * SECONDS_PER_MONTH,
        )

    @property
    def log_gb_per_month(self) -> float:
        return self.log_bytes_per_second * SECONDS_PER_MONTH / LOGS_BYTES_PER_GB

    @property
    def over_tps_quota(self) -> bool:
        return self.put_metric_data_per_second > PUT_METRIC_DATA_TPS_QUOTA


@dataclass(frozen=True)
class Plan:
    """The capacity and cost model's answer for one workload."""

    inputs: PlanInputs
    metrics_per_message: float
    message_bytes: float
    messages_per_second: float
    messages_per_invocation: float
    metrics_per_invocation: float
    invocations_per_second: float
    handler_seconds: float
    concurrency: float
    datums_per_invocation: float
    put_metric_data_per_invocation: int
    designs: tuple[DesignRates, ...]
    storage_dollars_per_month: float
    warnings: tuple[str, ...]

    def design(self, name: str) -> DesignRates:
        return next(d for d in self.designs if d.design == name)

    def cheapest_mode(self) -> tuple[str, str]:
        """The producer mode (``sqs`` or ``emf``) that costs less for this workload, and why, in one sentence."""
        queue, emf = self.design("metricbatch").monthly, self.design("emf-aggregated").monthly
        rate = self.inputs.rate
        per_metric = emf.log_bytes / (rate * SECONDS_PER_MONTH) if rate else 0.0
        queue_side = (
            f"sqs (the queue) costs ${queue.dollars:,.2f}/month: SQS ${queue.sqs_dollars:,.2f} + Lambda "
            f"${queue.lambda_dollars:,.2f} + PutMetricData ${queue.put_metric_data_dollars:,.2f}, shared by "
            f"{self.metrics_per_message:,.0f} metrics per message"
        )
        emf_side = f"emf writes {per_metric:,.1f} log bytes per metric, ${emf.dollars:,.2f}/month of ingestion"
        if queue.dollars <= emf.dollars:
            return "sqs", f"{queue_side}; {emf_side} (every sample is logged, the queue's costs do not grow with it)"
        return "emf", f"{emf_side}; {queue_side} (at this rate the queue's fixed costs outweigh the log bytes)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "inputs": asdict(self.inputs),
            "metrics_per_message": self.metrics_per_message,
            "message_bytes": self.message_bytes,
            "messages_per_second": self.messages_per_second,
            "messages_per_invocation": self.messages_per_invocation,
            "metrics_per_invocation": self.metrics_per_invocation,
            "invocations_per_second": self.invocations_per_second,
            "handler_seconds": self.handler_seconds,
            "concurrency": self.concurrency,
            "datums_per_invocation": self.datums_per_invocation,
            "put_metric_data_per_invocation": self.put_metric_data_per_invocation,
            "put_metric_data_tps_quota": PUT_METRIC_DATA_TPS_QUOTA,
            "designs": {
                d.design: {
                    "put_metric_data_per_second": d.put_metric_data_per_second,
                    "sqs_billed_per_second": d.sqs_billed_per_second,
                    "invocations_per_second": d.invocations_per_second,
                    "gb_seconds_per_second": d.gb_seconds_per_second,
                    "over_tps_quota": d.over_tps_quota,
                    "log_bytes_per_second": d.log_bytes_per_second,
                    "log_gb_per_month": d.log_gb_per_month,
                    "monthly": d.monthly.as_dict(),
                }
                for d in self.designs
            },
            "storage_dollars_per_month": self.storage_dollars_per_month,
            "cheapest_mode": self.cheapest_mode()[0],
            "warnings": list(self.warnings),
        }


def billed_sqs_requests(requests: float, payload_bytes: float) -> float:
    """SQS bills every request, and each 64 KiB chunk of its payload as one more."""
    return max(requests, payload_bytes / SQS_BILLING_CHUNK_BYTES)


def invocations_per_second(messages_per_second: float, batch_size: int, window_seconds: float) -> float:
    """How often the event source mapping invokes: a batch closes at ``batch_size`` or after the window.

    Below one message per window every message gets its own invocation.
    """
    if messages_per_second <= 0:
        return 0.0
    if window_seconds <= 0 or messages_per_second * window_seconds >= batch_size:
        return messages_per_second / batch_size
    return min(messages_per_second, 1.0 / window_seconds)


def _idle_receives_per_second(rate: float) -> float:
    return IDLE_POLLERS / MAX_SQS_WAIT_SECONDS if rate > 0 else 0.0


def emf_designs(inputs: PlanInputs, round_samples: float) -> tuple[DesignRates, DesignRates]:
    """Log bytes per second of EMF one document per request, and of metricbatch's emf mode (rounds of
    ``round_samples`` per producer: a document per series seen and 100 samples, each sample a value)."""
    rate = inputs.rate
    per_request = DesignRates(
        "emf-per-request",
        put_metric_data_per_second=0.0,
        log_bytes_per_second=log_bytes(rate * EMF_PER_REQUEST_DOCUMENT_BYTES, rate),
    )
    series_seen = min(float(inputs.series), round_samples)
    per_series = round_samples / series_seen
    documents = series_seen * math.ceil(per_series / MAX_EMF_VALUES_PER_METRIC)
    rounds_per_second = rate / round_samples
    round_bytes = documents * EMF_DOCUMENT_BYTES + round_samples * EMF_VALUE_BYTES
    aggregated = DesignRates(
        "emf-aggregated",
        put_metric_data_per_second=0.0,
        log_bytes_per_second=rounds_per_second * log_bytes(round_bytes, documents),
    )
    return per_request, aggregated


def plan(inputs: PlanInputs) -> Plan:
    """Messages, invocations, concurrency, PutMetricData TPS and monthly dollars of designs 1-4 and the two EMF
    designs (5 one document per request, 6 metricbatch's emf mode) for a workload."""
    problems = event_source_problems(inputs.batch_size, inputs.window_seconds)
    rate, warnings = inputs.rate, [f"the event source mapping refuses this: {p}" for p in problems]

    # Producers: a round every flush interval (sooner at PRODUCER_ROUND_SAMPLES pending) merges each series into
    # one wire metric; a round's bytes fill as many messages as they need, up to 10 per SendMessageBatch.
    producers = max(1, inputs.producers)
    per_producer = rate / producers
    round_samples = min(per_producer * inputs.flush_interval_seconds, float(PRODUCER_ROUND_SAMPLES))
    if round_samples < 1:  # a trickle: every metric goes out alone in its own round
        round_samples = 1.0
    # A producer emits its share of the series, not the fleet's (issue 27).
    producer_series = _producer_series(inputs.series, producers, inputs.producers_per_series)
    round_bytes = (
        min(producer_series, round_samples) * inputs.wire_entry_bytes + round_samples * inputs.wire_value_bytes
    )
    messages_per_round = math.ceil(round_bytes / (MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES))
    metrics_per_message = round_samples / messages_per_round
    message_bytes = round_bytes / messages_per_round
    messages_per_second = rate / metrics_per_message if rate > 0 else 0.0
    rounds_per_second = messages_per_second / messages_per_round
    send_requests_per_second = rounds_per_second * math.ceil(messages_per_round / MAX_SQS_BATCH_ENTRIES)

    # The event source mapping: batch size, window, and the 6 MB invocation payload.
    batch_size = max(1, inputs.batch_size)
    if batch_size * message_bytes > MAX_LAMBDA_PAYLOAD_BYTES:
        fits = max(1, int(MAX_LAMBDA_PAYLOAD_BYTES // message_bytes))
        warnings.append(
            f"{batch_size} messages of {message_bytes / 1e6:.2f} MB exceed Lambda's 6 MB payload; "
            f"batches close at {fits} messages"
        )
        batch_size = fits
    invocations = invocations_per_second(messages_per_second, batch_size, inputs.window_seconds)
    messages_per_invocation = messages_per_second / invocations if invocations else 0.0
    metrics_per_invocation = messages_per_invocation * metrics_per_message

    # One datum per series and minute, split at 150 distinct values (worst case: every value distinct).
    series_seen = min(float(inputs.series), metrics_per_invocation)
    per_series = metrics_per_invocation / series_seen if series_seen else 0.0
    datums = series_seen * math.ceil(per_series / MAX_VALUES_PER_DATUM) if series_seen else 0.0
    request_bytes = datums * DATUM_BYTES + metrics_per_invocation * VALUE_BYTES
    calls_per_invocation = (
        max(1, math.ceil(datums / MAX_DATUMS_PER_REQUEST), math.ceil(request_bytes / MAX_REQUEST_BYTES))
        if invocations
        else 0
    )
    handler_seconds = inputs.handler_fixed_seconds + inputs.handler_seconds_per_metric * metrics_per_invocation
    concurrency = invocations * handler_seconds  # Little's law
    idle = _idle_receives_per_second(rate)
    bytes_per_second = messages_per_second * message_bytes

    put_metric_data_per_second = invocations * calls_per_invocation
    if producers > 1:  # partial aggregates from many producers: the fleet model counts what really merges
        put_metric_data_per_second = fleet_rates(
            FleetInputs(
                rate=rate,
                series=inputs.series,
                producers=producers,
                producers_per_series=inputs.producers_per_series,
                round_seconds=inputs.flush_interval_seconds,
                batch_size=inputs.batch_size,
                window_seconds=inputs.window_seconds,
            )
        ).put_metric_data_per_second
    ours = DesignRates(
        "metricbatch",
        put_metric_data_per_second=put_metric_data_per_second,
        # send (one SendMessageBatch per round) + receive (10 per call) + delete (10 per batch), chunks of 64 KiB
        sqs_billed_per_second=billed_sqs_requests(send_requests_per_second, bytes_per_second)
        + billed_sqs_requests(messages_per_second / MAX_SQS_RECEIVE_MESSAGES, bytes_per_second)
        + messages_per_second / MAX_SQS_BATCH_ENTRIES
        + idle,
        invocations_per_second=invocations,
        gb_seconds_per_second=gb_seconds(concurrency, inputs.memory_mb),
    )
    naive_invocations = rate / OLD_BATCHER_DATUMS_PER_CALL
    naive_seconds = inputs.handler_fixed_seconds + inputs.handler_seconds_per_metric * OLD_BATCHER_DATUMS_PER_CALL
    naive = DesignRates(
        "naive-queue",
        put_metric_data_per_second=naive_invocations,
        sqs_billed_per_second=rate + 2 * rate / MAX_SQS_RECEIVE_MESSAGES + idle,  # one SendMessage per metric
        invocations_per_second=naive_invocations,
        gb_seconds_per_second=gb_seconds(naive_invocations * naive_seconds, inputs.memory_mb),
    )
    designs = (
        DesignRates("direct", put_metric_data_per_second=rate),
        DesignRates("old-batcher-20", put_metric_data_per_second=rate / OLD_BATCHER_DATUMS_PER_CALL),
        naive,
        ours,
        *emf_designs(inputs, round_samples),
    )
    for design in designs:
        if design.over_tps_quota:
            warnings.append(
                f"{design.design}: {design.put_metric_data_per_second:,.1f} PutMetricData/s exceeds the "
                f"{PUT_METRIC_DATA_TPS_QUOTA} TPS account quota (throttling)"
            )
    return Plan(
        inputs=inputs,
        metrics_per_message=metrics_per_message,
        message_bytes=message_bytes,
        messages_per_second=messages_per_second,
        messages_per_invocation=messages_per_invocation,
        metrics_per_invocation=metrics_per_invocation,
        invocations_per_second=invocations,
        handler_seconds=handler_seconds,
        concurrency=concurrency,
        datums_per_invocation=datums,
        put_metric_data_per_invocation=calls_per_invocation,
        designs=designs,
        storage_dollars_per_month=inputs.series * PRICE_CUSTOM_METRIC_MONTH,
        warnings=tuple(warnings),
    )


# --- fleets: what decides PutMetricData at scale (issue 27) -----------------------------------------------------------
# A series-minute reaches the batcher as partial aggregates: one per producer that emits the series and per round
# (at most one per sample). The batcher merges only what one invocation sees, so the datums published per
# series-minute are the distinct invocations its parts land in. ``fleet_rates`` models that; ``benchmarks/fleet.py``
# measures it with the real producer buffer, packing and handler, and checks this model against it.
# Producers per series when not given: two replicas emitting each series (the structure issue 27 measured: four
# replicas per service, each emitting half of its series).
DEFAULT_PRODUCERS_PER_SERIES = 2
# Distinct values per series-minute when not given (latencies rounded to a millisecond, status codes, counters of 1
# take far fewer); the merged datum's Values/Counts size the PutMetricData request.
DEFAULT_DISTINCT_VALUES = 50
SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True, kw_only=True)
class FleetInputs:
    """A fleet's workload and one deployment setting: producer round, shards, event source batch and window."""

    rate: float  # metrics per second, all producers together
    series: int
    producers: int = 1
    producers_per_series: int | None = None  # default min(producers, DEFAULT_PRODUCERS_PER_SERIES)
    distinct_values: int = DEFAULT_DISTINCT_VALUES  # per series-minute, at most
    round_seconds: float = DEFAULT_FLUSH_INTERVAL_SECONDS  # a multiple of 60: minute-aligned (one part per minute)
    shards: int = 1
    batch_size: int = 20
    window_seconds: float = 30.0
    concurrent_batches: int = 2  # batches the event source fills at once from a burst (its MaximumConcurrency)
    memory_mb: int = 256
    payload_bytes: int = MAX_LAMBDA_PAYLOAD_BYTES  # an invocation's input (the bench scales it down with the fleet)

    @property
    def emitters(self) -> int:
        """Producers that emit each series."""
        wanted = DEFAULT_PRODUCERS_PER_SERIES if self.producers_per_series is None else self.producers_per_series
        return max(1, min(wanted, self.producers))

    @property
    def minute_aligned(self) -> bool:
        return self.round_seconds >= SECONDS_PER_MINUTE and self.round_seconds % SECONDS_PER_MINUTE == 0


@dataclass(frozen=True)
class FleetRates:
    """One setting's steady state: parts, messages, invocations and datums per minute, and the rates they cost."""

    inputs: FleetInputs
    parts_per_series_minute: float  # wire entries reaching the batcher per series-minute
    invocations_per_shard_minute: float
    datums_per_series_minute: float
    rates: DesignRates

    @property
    def put_metric_data_per_second(self) -> float:
        return self.rates.put_metric_data_per_second

    def as_dict(self) -> dict[str, Any]:
        monthly = self.rates.monthly
        return {
            "shards": self.inputs.shards,
            "producer_round_seconds": self.inputs.round_seconds,
            "batch_size": self.inputs.batch_size,
            "batching_window_seconds": self.inputs.window_seconds,
            "max_concurrency": self.inputs.concurrent_batches,
            "parts_per_series_minute": self.parts_per_series_minute,
            "invocations_per_shard_minute": self.invocations_per_shard_minute,
            "datums_per_series_minute": self.datums_per_series_minute,
            "put_metric_data_per_second": self.put_metric_data_per_second,
            "sqs_billed_per_second": self.rates.sqs_billed_per_second,
            "invocations_per_second": self.rates.invocations_per_second,
            "monthly": {
                **monthly.as_dict(),
                "put_metric_data_dollars": monthly.put_metric_data_dollars,
                "sqs_dollars": monthly.sqs_dollars,
                "lambda_dollars": monthly.lambda_dollars,
            },
            "dollars_per_month": monthly.dollars,
        }


def floor_put_metric_data_per_second(series: int) -> float:
    """The floor: one datum per series and minute, 1,000 datums per call."""
    return series / SECONDS_PER_MINUTE / MAX_DATUMS_PER_REQUEST


def floor_monthly_dollars(series: int) -> float:
    return floor_put_metric_data_per_second(series) * SECONDS_PER_MONTH * PRICE_PUT_METRIC_DATA_PER_REQUEST


def _producer_series(series: int, producers: int, producers_per_series: int | None) -> float:
    wanted = DEFAULT_PRODUCERS_PER_SERIES if producers_per_series is None else producers_per_series
    emitters = max(1, min(wanted, producers))
    return min(float(series), series * emitters / producers)


def _distinct_invocations(parts: float, invocations: float) -> float:
    """Expected distinct invocations ``parts`` parts land in, each in one of ``invocations`` at random."""
    if invocations <= 1.0:
        return 1.0
    return invocations * (1.0 - math.pow(1.0 - 1.0 / invocations, parts))


def fleet_rates(inputs: FleetInputs) -> FleetRates:
    """PutMetricData, SQS and Lambda rates of one setting for a fleet (see the section comment)."""
    series, producers, shards = max(1, inputs.series), max(1, inputs.producers), max(1, inputs.shards)
    per_series_minute = inputs.rate * SECONDS_PER_MINUTE / series  # samples
    rounds_per_minute = 1.0 if inputs.minute_aligned else SECONDS_PER_MINUTE / inputs.round_seconds
    # Parts: one per emitting producer and round that holds at least one of the series' samples (Poisson arrivals).
    slots = inputs.emitters * rounds_per_minute
    parts = max(1.0, slots * (1.0 - math.exp(-per_series_minute / slots)))
    part_values = min(per_series_minute / parts, float(inputs.distinct_values), float(MAX_VALUES_PER_DATUM))
    part_bytes = WIRE_ENTRY_BYTES + part_values * WIRE_VALUE_BYTES
    minute_bytes = series * parts * part_bytes
    shard_bytes = minute_bytes / shards

    # Messages per shard and minute: each producer round packs its parts for the shard into <= 1 MiB messages.
    producer_rounds = producers * rounds_per_minute
    parts_per_round_shard = series * parts / producer_rounds / shards
    message_limit = MAX_SQS_MESSAGE_BYTES - SQS_MESSAGE_HEADROOM_BYTES
    messages_per_round_shard = max(
        parts_per_round_shard * part_bytes / message_limit, 1.0 - math.exp(-parts_per_round_shard)
    )
    shard_messages = producer_rounds * messages_per_round_shard
    message_bytes = shard_bytes / shard_messages

    # Invocations per shard and minute: full batches (count or 6 MB); a steady trickle closes one per window; a
    # minute-aligned burst is split over the batches the event source fills at once.
    per_batch = max(1.0, min(float(inputs.batch_size), inputs.payload_bytes / message_bytes))
    full = shard_messages / per_batch
    if inputs.minute_aligned:
        invocations = max(full, min(shard_messages, float(max(1, inputs.concurrent_batches))))
    else:
        windows = SECONDS_PER_MINUTE / inputs.window_seconds if inputs.window_seconds > 0 else shard_messages
        invocations = max(full, min(shard_messages, windows))
    # A trickle's series-minute spans the invocations of its minute; a burst's lands in the burst's batches.
    merged = _distinct_invocations(parts, invocations)
    datum_values = min(per_series_minute / merged, float(inputs.distinct_values))
    datums = merged * max(1, math.ceil(datum_values / MAX_VALUES_PER_DATUM))
    datum_bytes = DATUM_BYTES + min(datum_values, float(MAX_VALUES_PER_DATUM)) * VALUE_BYTES
    datums_per_invocation = series / shards * datums / invocations
    calls_per_invocation = max(
        1,
        math.ceil(datums_per_invocation / MAX_DATUMS_PER_REQUEST),
        math.ceil(datums_per_invocation * datum_bytes / MAX_REQUEST_BYTES),
    )

    invocations_per_second = shards * invocations / SECONDS_PER_MINUTE
    messages_per_second = shards * shard_messages / SECONDS_PER_MINUTE
    bytes_per_second = minute_bytes / SECONDS_PER_MINUTE
    sends_per_second = producer_rounds / SECONDS_PER_MINUTE * max(1.0, shards * messages_per_round_shard / 10)
    handler_seconds = HANDLER_FIXED_SECONDS + HANDLER_SECONDS_PER_METRIC * (series / shards * parts / invocations)
    rates = DesignRates(
        f"shards={shards},round={inputs.round_seconds:g}s",
        put_metric_data_per_second=invocations_per_second * calls_per_invocation,
        sqs_billed_per_second=billed_sqs_requests(sends_per_second, bytes_per_second)
        + billed_sqs_requests(messages_per_second / MAX_SQS_RECEIVE_MESSAGES, bytes_per_second)
        + messages_per_second / MAX_SQS_BATCH_ENTRIES
        + shards * _idle_receives_per_second(inputs.rate),
        invocations_per_second=invocations_per_second,
        gb_seconds_per_second=gb_seconds(invocations_per_second * handler_seconds, inputs.memory_mb),
    )
    return FleetRates(inputs, parts, invocations, datums, rates)


@dataclass(frozen=True)
class FleetPlan:
    """Today's setting and the recommended one for a fleet, against the floor."""

    today: FleetRates
    recommended: FleetRates
    floor_put_metric_data_per_second: float
    floor_dollars_per_month: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "floor_put_metric_data_per_second": self.floor_put_metric_data_per_second,
            "floor_dollars_per_month": self.floor_dollars_per_month,
            "today": self.today.as_dict(),
            "recommended": {
                **self.recommended.as_dict(),
                "context": f"-c shards={self.recommended.inputs.shards}",
                "environment": {
                    "METRICBATCH_ROUND_SECONDS": f"{self.recommended.inputs.round_seconds:g}",
                    "METRICBATCH_QUEUE_URLS": "the stack's QueueUrls output"
                    if self.recommended.inputs.shards > 1
                    else "(unset: METRICBATCH_QUEUE_URL)",
                },
            },
        }


# The recommendation: the fewest shards within TARGET_FLOOR_FACTOR of the floor and TARGET_QUOTA_SHARE of the TPS
# quota, among settings that save at least MIN_SAVING_* against today; else the lowest PutMetricData rate among them.
TARGET_FLOOR_FACTOR = 2.0
TARGET_QUOTA_SHARE = 0.5
MIN_SAVING_DOLLARS = 10.0  # per month
MIN_SAVING_FRACTION = 0.10
# Shard counts the plan tries (powers of two up to deploy.MAX_SHARDS).
SHARD_CANDIDATES = (2, 4, 8, 16, 32, 64)


def fleet_plan(
    *,
    rate: float,
    series: int,
    producers: int,
    producers_per_series: int | None = None,
    distinct_values: int = DEFAULT_DISTINCT_VALUES,
    today: FleetInputs | None = None,
    memory_mb: int = 256,
) -> FleetPlan:
    """Today's single queue and 5 s round against the sharded, minute-aligned settings; the cheapest wins (fewer
    shards on a near tie), so the recommendation is never worse than today."""
    from metricbatch.deploy import (
        FLEET_BATCH_SIZE,
        FLEET_BATCHING_WINDOW_SECONDS,
        FLEET_MAX_CONCURRENCY,
        FLEET_PRODUCER_ROUND_SECONDS,
    )

    common: dict[str, Any] = {
        "rate": rate,
        "series": series,
        "producers": producers,
        "producers_per_series": producers_per_series,
        "distinct_values": distinct_values,
        "memory_mb": memory_mb,
    }
    current = fleet_rates(today or FleetInputs(**common))
    floor = floor_put_metric_data_per_second(series)
    candidates: list[FleetRates] = []
    for shards in SHARD_CANDIDATES:
        candidate = fleet_rates(
            FleetInputs(
                **common,
                round_seconds=float(FLEET_PRODUCER_ROUND_SECONDS),
                shards=shards,
                batch_size=FLEET_BATCH_SIZE,
                window_seconds=float(FLEET_BATCHING_WINDOW_SECONDS),
                concurrent_batches=FLEET_MAX_CONCURRENCY,
            )
        )
        # Worth a minute's delay only when it saves real money (small services keep the 5 s round).
        saving = current.rates.monthly.dollars - candidate.rates.monthly.dollars
        if saving >= max(MIN_SAVING_DOLLARS, MIN_SAVING_FRACTION * current.rates.monthly.dollars):
            candidates.append(candidate)
    on_target = [
        c
        for c in candidates
        if c.put_metric_data_per_second <= TARGET_FLOOR_FACTOR * floor
        and c.put_metric_data_per_second <= TARGET_QUOTA_SHARE * PUT_METRIC_DATA_TPS_QUOTA
    ]
    if on_target:
        best = on_target[0]  # the fewest shards that meet the target
    elif candidates:
        best = min(candidates, key=lambda c: (c.put_metric_data_per_second, c.rates.monthly.dollars))
    else:
        best = current
    return FleetPlan(current, best, floor, floor_monthly_dollars(series))

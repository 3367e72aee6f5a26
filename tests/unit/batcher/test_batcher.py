"""MetricBatcher over fakes: bad input goes to the DLQ with its reason, valid datums are published exactly once,
unsent datums are re-queued with an attempt count, and nothing is lost when the DLQ itself is down."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from metricbatch.batcher.batcher import BatcherConfig, MetricBatcher
from metricbatch.wire import ATTR_REASON, ATTR_RULE, ATTR_SOURCE

from ..fakes import FakeClock, FakeCloudWatch, FakeSqs, client_error, connection_error, throttling

QUEUE = "https://sqs.fake/123456789012/metrics"
DLQ = "https://sqs.fake/123456789012/metrics-dlq"


def strict_json(text: str) -> Any:
    """json.loads that refuses what RFC 8259 does not allow (NaN, Infinity), as JSON.parse does."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def metric(name: str, value: float, namespace: str = "Shop/Checkout", **extra: Any) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "value": value, "timestamp": time.time() - 30, **extra}


def body(*metrics: dict[str, Any], attempt: int = 0) -> str:
    envelope: dict[str, Any] = {"v": 1, "metrics": list(metrics)}
    if attempt:
        envelope["attempt"] = attempt
    return json.dumps(envelope)


def make_batcher(
    cloudwatch: FakeCloudWatch,
    sqs: FakeSqs,
    *,
    clock: FakeClock | None = None,
    **config: Any,
) -> MetricBatcher:
    settings: dict[str, Any] = {"dlq_url": DLQ, "queue_url": QUEUE, **config}
    clock = clock or FakeClock(budget=60)
    return MetricBatcher(
        BatcherConfig(**settings), cloudwatch=cloudwatch, sqs=sqs, time_left=clock.time_left, sleep=clock.sleep
    )


def test_bad_input_goes_to_the_dlq_and_valid_datums_are_published_once() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs, allowed_namespaces=("Shop/",))
    # GIVEN a batch with an unparseable body, an unknown version, a message mixing valid and invalid datums,
    # a foreign namespace and a plain good message
    batcher.add_record("m-json", "this is not json")
    batcher.add_record("m-version", json.dumps({"v": 2, "metrics": [metric("Latency", 1.0)]}))
    mixed = body(metric("Latency", 10.0), metric("Latency", float("nan")), metric("Latency", 20.0))
    assert "NaN" in mixed
    batcher.add_record("m-mixed", mixed)
    batcher.add_record("m-foreign", body(metric("Latency", 99.0, namespace="Other/Team"), metric("Latency", 30.0)))
    batcher.add_record("m-good", body(metric("Latency", 40.0), metric("Orders", 1.0, unit="Count")))
    # WHEN the batch finishes
    failures = batcher.finish()
    # THEN no record fails: everything is either published or set aside
    assert failures == []
    # AND CloudWatch got every valid datum exactly once, in one call
    assert sorted(v for v, _ in cloudwatch.samples("Latency")) == [10.0, 20.0, 30.0, 40.0]
    assert cloudwatch.total("Orders") == 1.0
    assert len(cloudwatch.requests) == 1
    # AND the DLQ holds one message per bad part, with rule, reason and source attributes
    dlq = {m["Attributes"][ATTR_SOURCE]: m for m in sqs.messages(DLQ)}
    assert set(dlq) == {"m-json", "m-version", "m-mixed", "m-foreign"}
    rules = {source: m["Attributes"][ATTR_RULE] for source, m in dlq.items()}
    assert rules == {
        "m-json": "body.json",
        "m-version": "envelope.version",
        "m-mixed": "value.finite",
        "m-foreign": "namespace.not_allowed",
    }
    assert all(m["Attributes"][ATTR_REASON] for m in dlq.values())
    assert dlq["m-json"]["Body"] == "this is not json"  # unparseable bodies are kept verbatim
    mixed_aside = strict_json(dlq["m-mixed"]["Body"])
    assert len(mixed_aside["metrics"]) == 1
    assert (mixed_aside["errors"][0]["index"], mixed_aside["errors"][0]["position"]) == (0, 1)
    foreign_aside = json.loads(dlq["m-foreign"]["Body"])
    assert [m["namespace"] for m in foreign_aside["metrics"]] == ["Other/Team"]
    # AND nothing was re-queued; the report adds up
    assert sqs.messages(QUEUE) == []
    report = batcher.report
    assert (report.records, report.metrics_received, report.metrics_rejected) == (5, 7, 2)
    assert report.metrics_published == 5
    assert report.put_metric_data_calls == 1
    assert report.messages_set_aside == 4
    assert report.api_calls_saved == 5 - 1  # what was published, less the call that published it


def test_datums_of_many_records_merge_into_few_calls() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    now = time.time()
    for r in range(20):
        batcher.add_record(f"m{r}", body(*[metric("Latency", float(i), timestamp=now - 1) for i in range(50)]))
    assert batcher.finish() == []
    assert len(cloudwatch.requests) == 1
    assert cloudwatch.sample_count("Latency") == 1000
    assert cloudwatch.total("Latency") == 20 * sum(range(50))
    assert batcher.report.metrics_published == 1000


def test_default_timestamp_is_the_sent_timestamp() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    sent = int((time.time() - 3600) * 1000)
    batcher.add_record("m1", json.dumps({"v": 1, "metrics": [{"namespace": "Shop", "name": "L", "value": 1}]}),
                       sent_timestamp_ms=str(sent))  # fmt: skip
    assert batcher.finish() == []
    ((_, datum),) = cloudwatch.datums()
    assert datum["Timestamp"] == sent // 1000


def test_throttling_beyond_the_budget_requeues_only_the_unsent_datums() -> None:
    # GIVEN CloudWatch throttles one namespace without end and the invocation has 8 s left
    def throttle_payments(params: dict[str, Any]) -> BaseException | None:
        return throttling() if params["Namespace"] == "Payments" else None

    cloudwatch, sqs = FakeCloudWatch(fail_with=throttle_payments), FakeSqs()
    clock = FakeClock(budget=8.0)
    batcher = make_batcher(cloudwatch, sqs, clock=clock)
    batcher.add_record("m1", body(metric("Latency", 1.0), metric("Charge", 5.0, namespace="Payments")))
    batcher.add_record("m2", body(metric("Charge", 7.0, namespace="Payments"), metric("Latency", 2.0)))
    # WHEN the batch finishes
    failures = batcher.finish()
    # THEN the healthy namespace is published once, the throttled one re-queued once, attempt 1, and nothing fails
    assert failures == []
    assert sorted(v for v, _ in cloudwatch.samples()) == [1.0, 2.0]
    requeued = sqs.envelopes(QUEUE)
    assert len(requeued) == 1
    assert requeued[0]["attempt"] == 1
    charged = [(m["namespace"], m["name"], sorted(m["values"])) for m in requeued[0]["metrics"]]
    assert charged == [("Payments", "Charge", [5.0, 7.0])]
    assert sqs.messages(DLQ) == []
    assert batcher.report.messages_requeued == 1
    # AND the retries stopped before the reserve was touched
    assert clock.now <= 8.0 - 2.0
    assert batcher.report.put_metric_data_retries >= 1


def test_requeued_message_is_published_on_redelivery() -> None:
    # GIVEN the message a throttled invocation re-queued
    first_sqs = FakeSqs()
    first = make_batcher(FakeCloudWatch(always=throttling()), first_sqs, clock=FakeClock(budget=5))
    first.add_record("m1", body(metric("Latency", 1.0), metric("Latency", 2.0)))
    assert first.finish() == []
    (requeued,) = first_sqs.messages(QUEUE)
    # WHEN a later invocation receives it and CloudWatch is back
    cloudwatch = FakeCloudWatch()
    second = make_batcher(cloudwatch, FakeSqs())
    second.add_record("m2", requeued["Body"])
    # THEN the datums are published, and not counted as newly received
    assert second.finish() == []
    assert sorted(v for v, _ in cloudwatch.samples("Latency")) == [1.0, 2.0]
    assert second.report.metrics_received == 0


def test_attempt_past_the_limit_goes_to_the_dlq_instead_of_cycling() -> None:
    cloudwatch, sqs = FakeCloudWatch(always=throttling()), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs, clock=FakeClock(budget=5), max_requeue_attempts=3)
    batcher.add_record("m1", body(metric("Latency", 1.0), attempt=3))
    batcher.add_record("m2", body(metric("Orders", 2.0), attempt=2))
    assert batcher.finish() == []
    # the message already re-queued 3 times is set aside; the one at 2 is re-queued as attempt 3
    (aside,) = sqs.messages(DLQ)
    assert aside["Attributes"][ATTR_RULE] == "cloudwatch.unavailable"
    assert "Throttling" in aside["Attributes"][ATTR_REASON]
    assert [m["name"] for m in json.loads(aside["Body"])["metrics"]] == ["Latency"]
    (requeued,) = sqs.envelopes(QUEUE)
    assert requeued["attempt"] == 3
    assert [m["name"] for m in requeued["metrics"]] == ["Orders"]


def test_dlq_unreachable_fails_that_record_and_holds_back_its_valid_datums() -> None:
    # GIVEN the DLQ cannot be written
    def dlq_down(url: str) -> BaseException | None:
        return client_error("AccessDenied", 403, "SendMessageBatch") if url == DLQ else None

    cloudwatch, sqs = FakeCloudWatch(), FakeSqs(raise_for=dlq_down)
    batcher = make_batcher(cloudwatch, sqs)
    batcher.add_record("m-mixed", body(metric("Latency", 10.0), metric("Latency", 5.0, unit="ms")))
    batcher.add_record("m-good", body(metric("Latency", 20.0)))
    # WHEN the batch finishes
    failures = batcher.finish()
    # THEN the record whose bad part could not be set aside fails whole (SQS will redeliver it) ...
    assert failures == ["m-mixed"]
    # ... and its valid datum is not published now, so the redelivery cannot double-count it
    assert [v for v, _ in cloudwatch.samples("Latency")] == [20.0]
    assert batcher.report.failed_records == 1


def test_dlq_not_configured_fails_records_with_bad_parts() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs, dlq_url=None)
    batcher.add_record("m-bad", "{")
    batcher.add_record("m-good", body(metric("Latency", 1.0)))
    assert batcher.finish() == ["m-bad"]
    assert cloudwatch.total("Latency") == 1.0


def test_requeue_failure_fails_the_records_of_the_unsent_datums() -> None:
    def queue_down(url: str) -> BaseException | None:
        return connection_error(url) if url == QUEUE else None

    def throttle_payments(params: dict[str, Any]) -> BaseException | None:
        return throttling() if params["Namespace"] == "Payments" else None

    cloudwatch, sqs = FakeCloudWatch(fail_with=throttle_payments), FakeSqs(raise_for=queue_down)
    batcher = make_batcher(cloudwatch, sqs, clock=FakeClock(budget=5))
    batcher.add_record("m-pay", body(metric("Charge", 5.0, namespace="Payments")))
    batcher.add_record("m-shop", body(metric("Latency", 1.0)))
    assert batcher.finish() == ["m-pay"]
    assert cloudwatch.total("Latency") == 1.0


def test_datum_cloudwatch_rejects_goes_to_the_dlq_and_the_rest_is_published() -> None:
    def reject_secret(params: dict[str, Any]) -> BaseException | None:
        if any(d["MetricName"] == "Secret" for d in params["MetricData"]):
            return client_error("InvalidParameterValue", 400)
        return None

    cloudwatch, sqs = FakeCloudWatch(fail_with=reject_secret), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    batcher.add_record("m1", body(*[metric(f"M{i}", float(i)) for i in range(10)], metric("Secret", 1.0)))
    assert batcher.finish() == []
    assert sorted(d["MetricName"] for _, d in cloudwatch.datums()) == sorted(f"M{i}" for i in range(10))
    (aside,) = sqs.messages(DLQ)
    assert aside["Attributes"][ATTR_RULE] == "cloudwatch.rejected"
    assert [m["name"] for m in json.loads(aside["Body"])["metrics"]] == ["Secret"]
    assert batcher.report.metrics_rejected == 1


def test_excluded_records_contribute_nothing() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    batcher.add_record("m1", body(metric("Latency", 1.0)))
    batcher.add_record("m2", body(metric("Latency", 2.0)))
    assert batcher.finish(exclude={"m1"}) == ["m1"]
    assert [v for v, _ in cloudwatch.samples()] == [2.0]


@pytest.mark.parametrize(
    ("environ", "allowed", "dlq"),
    [
        ({}, (), None),
        (
            {"METRICBATCH_ALLOWED_NAMESPACES": "Shop/, Payments ,", "METRICBATCH_DLQ_URL": DLQ},
            ("Shop/", "Payments"),
            DLQ,
        ),
    ],
)
def test_config_from_environment(environ: dict[str, str], allowed: tuple[str, ...], dlq: str | None) -> None:
    config = BatcherConfig.from_env(environ)
    assert (config.allowed_namespaces, config.dlq_url) == (allowed, dlq)
    assert BatcherConfig.from_env(environ, dlq_url="https://explicit").dlq_url == "https://explicit"


def test_a_second_copy_of_a_message_in_the_batch_is_not_published_again() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    # GIVEN the same message delivered twice in one batch (SQS is at-least-once)
    batcher.add_record("m-1", body(metric("Orders", 2.0)))
    batcher.add_record("m-1", body(metric("Orders", 2.0)))
    # WHEN the batch finishes
    assert batcher.finish() == []
    # THEN its metric was published once
    values = [d.get("Value") for r in cloudwatch.requests for d in r["MetricData"]]
    assert values == [2.0]
    assert batcher.report.duplicate_messages == 1


def test_a_second_copy_shares_the_fate_of_the_first_when_it_fails() -> None:
    # GIVEN a DLQ that cannot be reached, and a message with an invalid datum delivered twice
    cloudwatch = FakeCloudWatch()
    sqs = FakeSqs(raise_for=lambda url: connection_error() if url == DLQ else None)
    batcher = make_batcher(cloudwatch, sqs)
    bad = body(metric("Orders", 1.0), metric("Orders", float("inf")))
    batcher.add_record("m-1", bad)
    batcher.add_record("m-1", bad)
    # WHEN the batch finishes
    failures = batcher.finish()
    # THEN both copies are failed (deleting either would delete the message) and nothing was published
    assert failures == ["m-1", "m-1"]
    assert cloudwatch.requests == []


def test_a_message_settled_before_by_this_sandbox_is_skipped_but_a_failed_one_is_not() -> None:
    from metricbatch.batcher.batcher import RecentMessageIds

    settled = RecentMessageIds(capacity=2)
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    clock = FakeClock(budget=60)

    def batcher() -> MetricBatcher:
        return MetricBatcher(
            BatcherConfig(dlq_url=DLQ, queue_url=QUEUE),
            cloudwatch=cloudwatch,
            sqs=sqs,
            time_left=clock.time_left,
            sleep=clock.sleep,
            settled_ids=settled,
        )

    first = batcher()
    first.add_record("m-1", body(metric("Orders", 3.0)))
    assert first.finish() == []
    # WHEN the same message is redelivered to this sandbox
    again = batcher()
    again.add_record("m-1", body(metric("Orders", 3.0)))
    assert again.finish() == []
    # THEN it was published only once; and the memory is bounded
    assert [d.get("Value") for r in cloudwatch.requests for d in r["MetricData"]] == [3.0]
    for i in range(5):
        settled.add(f"x-{i}")
    assert len(settled) == 2
    assert "m-1" not in settled


@pytest.mark.parametrize("tiny", [1e-200, -5e-324, 2.0**-361])
def test_a_tiny_value_costs_no_neighbour_of_its_series_minute(tiny: float) -> None:
    # GIVEN 99 valid values and one whose magnitude CloudWatch rejects as too small, in one series and minute (the
    # tiny one last, so it takes the batcher's fast path for a series already validated), and once as a Values entry
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    ts = time.time() - 30
    batcher.add_record(
        "m-1",
        body(
            *(metric("Latency", float(i + 1), timestamp=ts) for i in range(99)), metric("Latency", tiny, timestamp=ts)
        ),
    )
    batcher.add_record(
        "m-2",
        body(
            metric("Latency", 0.0, timestamp=ts) | {"value": 7.0},
            {"namespace": "Shop/Checkout", "name": "Latency", "values": [tiny, 8.0], "counts": [2, 1], "timestamp": ts},
        ),
    )
    # WHEN the batch finishes
    assert batcher.finish() == []
    # THEN all 100 + 4 samples are published (the tiny ones as 0), and nothing is set aside
    assert cloudwatch.sample_count("Latency") == 104
    assert cloudwatch.total("Latency") == sum(range(1, 100)) + 7.0 + 8.0
    assert sorted(v for v, _ in cloudwatch.samples("Latency"))[0] == 0.0
    assert sqs.messages(DLQ) == []
    assert batcher.report.metrics_rejected == 0


def test_a_wire_metric_whose_counts_are_all_zero_is_set_aside_and_its_neighbours_published() -> None:
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    ts = time.time() - 30
    zero = {
        "namespace": "Shop/Checkout",
        "name": "Latency",
        "values": [1.0, 2.0],
        "counts": [0, 1e-300],
        "timestamp": ts,
    }
    batcher.add_record("m-1", body(metric("Latency", 3.0, timestamp=ts), zero))
    assert batcher.finish() == []
    assert cloudwatch.samples("Latency") == [(3.0, 1.0)]
    (aside,) = sqs.messages(DLQ)
    assert aside["Attributes"][ATTR_RULE] == "counts.zero"


def test_unsent_datums_are_requeued_without_parsing_the_json_just_written(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a batch whose datums CloudWatch cannot take (throttled throughout)
    cloudwatch, sqs = FakeCloudWatch(always=throttling()), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs, clock=FakeClock(budget=3))
    for i in range(5):
        batcher.add_record(f"m-{i}", body(*(metric(f"M{j}", float(i * 10 + j)) for j in range(10))))

    # WHEN it finishes, with JSON parsing forbidden (it only writes JSON)
    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("JSON was parsed while settling")

    monkeypatch.setattr(json, "loads", no_parsing)
    failures = batcher.finish()
    monkeypatch.undo()

    # THEN every datum is back on the queue, in one message, exactly once
    assert failures == []
    (requeued,) = sqs.envelopes(QUEUE)
    assert requeued["attempt"] == 1
    assert sorted(m["name"] for m in requeued["metrics"]) == sorted(f"M{j}" for j in range(10))
    assert sum(sum(m["counts"]) for m in requeued["metrics"]) == 50


def test_the_saving_counts_what_was_published_once_not_what_was_received() -> None:
    # GIVEN CloudWatch down: one message of 10 samples is received, nothing published, its datums re-queued
    sqs = FakeSqs()
    down = make_batcher(FakeCloudWatch(always=throttling()), sqs, clock=FakeClock(budget=3))
    down.add_record("m-1", body(*(metric("Latency", float(i)) for i in range(10))))
    assert down.finish() == []
    # THEN nothing is saved yet (the old definition, received - calls, claimed 10)
    assert (down.report.metrics_received, down.report.metrics_published) == (10, 0)
    assert down.report.api_calls_saved == 0
    # WHEN CloudWatch is back and the re-queued message is handled
    (requeued,) = sqs.messages(QUEUE)
    up = make_batcher(FakeCloudWatch(), sqs)
    up.add_record("m-2", requeued["Body"])
    assert up.finish() == []
    # THEN the samples are counted once, when published: not received again, saved = published - the one call
    assert (up.report.metrics_received, up.report.metrics_published, up.report.put_metric_data_calls) == (0, 10, 1)
    assert down.report.api_calls_saved + up.report.api_calls_saved == 10 - 1


def test_samples_of_a_record_that_will_be_redelivered_are_not_counted_as_published() -> None:
    # GIVEN one record whose datums partly publish (namespace Up) and partly cannot be re-queued (Down)
    cloudwatch = FakeCloudWatch(fail_with=lambda p: throttling() if p["Namespace"] == "Shop/Down" else None)
    batcher = make_batcher(cloudwatch, FakeSqs(raise_for=lambda url: throttling()), clock=FakeClock(budget=3))
    batcher.add_record(
        "m-mixed", body(metric("Latency", 1.0, namespace="Shop/Up"), metric("L", 2.0, namespace="Shop/Down"))
    )
    batcher.add_record(
        "m-good", body(metric("Latency", 3.0, namespace="Shop/Up"), metric("Latency", 4.0, namespace="Shop/Up"))
    )
    # WHEN it finishes: m-mixed fails (SQS redelivers it, and its Up datum will be published again then)
    assert batcher.finish() == ["m-mixed"]
    # THEN only the settled record's samples count as published; the redelivery will count the others
    assert cloudwatch.sample_count("Latency") == 3
    assert batcher.report.metrics_published == 2
    assert batcher.report.api_calls_saved == 2 - 1


def test_dlq_bodies_are_strict_json_and_errors_point_into_them() -> None:
    # GIVEN a message whose invalid metrics hold numbers JSON cannot (what Python's json and other encoders write)
    cloudwatch, sqs = FakeCloudWatch(), FakeSqs()
    batcher = make_batcher(cloudwatch, sqs)
    raw = body(
        metric("Latency", 1.0),
        metric("Latency", float("inf")),
        {"namespace": "Shop/Checkout", "name": "L", "values": [1.0, float("nan")], "counts": [1, float("-inf")]},
        metric("Latency", 2.0, unit="Parsecs", timestamp=float("nan")),
    )
    assert "Infinity" in raw and "NaN" in raw
    batcher.add_record("m-1", raw)
    assert batcher.finish() == []
    # THEN the DLQ body parses with a strict parser ...
    (message,) = sqs.messages(DLQ)
    aside = strict_json(message["Body"])
    # ... errors[i] explains metrics[i], and says where it was in the source message and what was not a number
    assert [e["index"] for e in aside["errors"]] == [0, 1, 2]
    assert [e["position"] for e in aside["errors"]] == [1, 2, 3]
    assert [e["rule"] for e in aside["errors"]] == ["value.finite", "value.finite", "unit.unknown"]
    assert aside["errors"][0]["non_finite"] == {"value": "Infinity"}
    assert aside["errors"][1]["non_finite"] == {"values[1]": "NaN", "counts[1]": "-Infinity"}
    assert aside["errors"][2]["non_finite"] == {"timestamp": "NaN"}
    assert aside["metrics"][1]["values"] == [1.0, "NaN"]
    assert aside["source_message_id"] == "m-1"
    # AND the valid metric was published
    assert cloudwatch.samples("Latency") == [(1.0, 1.0)]

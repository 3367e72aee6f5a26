"""Poison input: bad bodies and bad datums go to the DLQ with their rule; good datums in the same batch still land."""

from __future__ import annotations

import json
import time

from functional_support import calls, send_bodies, take_dlq, unique_namespace

from metricbatch.emulator.local_pipeline import LocalPipeline

PIPELINE_OPTIONS = {"allowed_namespaces": ["Shop/"]}
DAY = 86400


def _metric(namespace: str, **fields: object) -> dict[str, object]:
    return {
        "namespace": namespace,
        "name": "Orders",
        "dimensions": {"Case": "mixed"},
        "timestamp": time.time(),
        **fields,
    }


def test_bad_bodies_and_datums_are_set_aside_and_the_rest_lands_exactly_once(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    shop = unique_namespace("Shop")
    foreign = unique_namespace("Other")
    now = time.time()
    unparseable = "this is {not json"
    unknown_version = json.dumps({"v": 2, "metrics": [_metric(shop, value=100.0)]})
    bad_datums = [
        # NaN as raw JSON (what a non-Python producer may write); json.dumps spells it NaN too
        _metric(shop, value=float("nan")),
        _metric(shop, value=1.0, dimensions={f"D{i}": "x" for i in range(31)}),
        _metric(shop, value=1.0, timestamp=now - 30 * DAY),
        _metric(shop, value=1.0, unit="Parsecs"),
    ]
    mixed = json.dumps(
        {"v": 1, "metrics": [_metric(shop, value=3.5), *bad_datums, _metric(shop, values=[1, 2], counts=[2, 1])]}
    )
    assert "NaN" in mixed
    foreign_ns = json.dumps(
        {"v": 1, "metrics": [_metric(foreign, value=9.0), _metric(shop, value=1.25, dimensions={"Case": "foreign"})]}
    )
    healthy = json.dumps({"v": 1, "metrics": [_metric(shop, value=2.0, dimensions={"Case": "healthy"})]})

    # GIVEN one batch holding an unparseable body, an unknown version, a mixed message, a foreign namespace, a good one
    send_bodies(pipeline, [unparseable, unknown_version, mixed, foreign_ns, healthy])

    # WHEN the handler processes it
    pipeline.poller.drain(timeout=30, window_seconds=1.0)

    # THEN valid datums land exactly once (the invalid ones share their series: a leak would change the sums)
    assert pipeline.read_series(shop, "Orders", {"Case": "mixed"}) == (3.5 + 1 * 2 + 2 * 1, 4)
    assert pipeline.read_series(shop, "Orders", {"Case": "foreign"}) == (1.25, 1)
    assert pipeline.read_series(shop, "Orders", {"Case": "healthy"}) == (2.0, 1)
    assert pipeline.read_series(foreign, "Orders", {"Case": "mixed"}) == (0, 0)
    # AND nothing invalid reached CloudWatch
    assert pipeline.aws.ledger.rejections == []
    assert pipeline.aws.ledger.errors["cloudwatch:PutMetricData"] == 0
    assert calls(pipeline, "cloudwatch:PutMetricData") >= 1
    # AND no record failed: every message of the batch is deleted, nothing is redelivered
    assert pipeline.poller.stats.item_failures == 0
    assert pipeline.poller.stats.batch_failures == 0
    assert pipeline.queue_depth() == 0

    # AND each bad part is in the DLQ with its rule
    dlq = {m.rule: m for m in take_dlq(pipeline, wait_seconds=2)}
    assert set(dlq) == {"body.json", "envelope.version", "value.finite", "namespace.not_allowed"}
    assert dlq["body.json"].body == unparseable
    assert dlq["envelope.version"].body == unknown_version
    assert all(m.reason for m in dlq.values())
    set_aside = dlq["value.finite"].json()
    assert [e["rule"] for e in set_aside["errors"]] == [
        "value.finite",
        "dimensions.count",
        "timestamp.too_old",
        "unit.unknown",
    ]
    assert [e["position"] for e in set_aside["errors"]] == [1, 2, 3, 4]  # in the source message
    assert [e["index"] for e in set_aside["errors"]] == [0, 1, 2, 3]  # in this body's metrics
    assert set_aside["errors"][0]["non_finite"] == {"value": "NaN"}
    assert len(set_aside["metrics"]) == 4
    assert "4 invalid metric(s)" in (dlq["value.finite"].reason or "")
    foreign_part = dlq["namespace.not_allowed"].json()
    assert [m["namespace"] for m in foreign_part["metrics"]] == [foreign]


def test_valid_datums_of_a_poisoned_message_are_not_published_again_on_a_second_pass(
    clean_pipeline: LocalPipeline,
) -> None:
    pipeline = clean_pipeline
    shop = unique_namespace("Shop")
    body = json.dumps({"v": 1, "metrics": [_metric(shop, value=5.0), _metric(shop, value=1.0, unit="Parsecs")]})

    # GIVEN a message with one good and one bad datum, processed once
    send_bodies(pipeline, [body])
    pipeline.poller.drain(timeout=30)
    # WHEN the pipeline keeps polling
    pipeline.poller.drain(timeout=5)

    # THEN the good datum counted once, the bad one is in the DLQ once
    assert pipeline.read_series(shop, "Orders", {"Case": "mixed"}) == (5.0, 1)
    assert [m.rule for m in take_dlq(pipeline, wait_seconds=2)] == ["unit.unknown"]
    assert pipeline.queue_depth() == 0


def test_a_tiny_value_from_another_producer_is_published_as_zero_with_its_neighbours(
    clean_pipeline: LocalPipeline,
) -> None:
    pipeline = clean_pipeline
    shop = unique_namespace("Shop")
    now = time.time()
    # GIVEN a message from a producer that does not round (another language), with 99 valid values and one of 1e-200
    # in the same series and minute: CloudWatch (the strict gateway) rejects a datum holding 1e-200
    metrics = [_metric(shop, value=float(i + 1), timestamp=now) for i in range(99)]
    metrics.append(_metric(shop, value=1e-200, timestamp=now))
    send_bodies(pipeline, [json.dumps({"v": 1, "metrics": metrics})])

    # WHEN the handler processes it
    pipeline.poller.drain(timeout=30, window_seconds=0.5)

    # THEN all 100 samples land (the tiny one as 0), CloudWatch rejected nothing, and the DLQ is empty
    assert pipeline.read_series(shop, "Orders", {"Case": "mixed"}) == (sum(range(1, 100)), 100)
    assert pipeline.aws.ledger.rejections == []
    assert take_dlq(pipeline, wait_seconds=1) == []

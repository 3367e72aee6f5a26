"""Issue 24: default dimensions and roll-ups through the public API (memory mode, the shared vectors of
tests/vectors/dimensions.json), the EMF dimension sets, and instrument_boto3 against botocore's Stubber."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from metricbatch import ConfigurationError, InvalidMetricError, MetricProducer, instrument_boto3
from metricbatch.producer.instrument import ERROR_TYPES, classify_response
from metricbatch.testing import captured, clear

from . import emf_spec

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "dimensions.json").read_text())
NAMESPACE = "Unit/Dimensions"


@pytest.fixture(autouse=True)
def _memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("METRICBATCH_DEFAULT_DIMENSIONS", raising=False)
    clear()
    yield
    clear()


def _decode(dimensions: dict[str, Any] | None) -> dict[str, str] | None:
    if dimensions is None:
        return None
    if "$count" in dimensions:
        return {f"D{i}": "v" for i in range(dimensions["$count"])}
    if "$count_from" in dimensions:
        start = dimensions["$count_from"]
        return {f"D{i}": "v" for i in range(start, start + dimensions["n"])}
    return dict(dimensions)


# -- METRICBATCH_DEFAULT_DIMENSIONS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", VECTORS["default_dimensions_variable"], ids=lambda c: repr(c["value"]))
def test_default_dimensions_variable(
    case: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("METRICBATCH_DEFAULT_DIMENSIONS", case["value"])
    caplog.set_level(logging.ERROR)
    # WHEN a producer starts with the variable set (never raises, whatever it holds)
    producer = MetricProducer(mode="memory", namespace=NAMESPACE)
    producer.send_metric("M", 1.0)
    producer.send_metric("M", 2.0)
    dims = [dict(m.dimensions) for m in captured()]
    if "ignored" in case:
        # THEN a malformed value is ignored with one clear line naming the variable and the rule
        assert dims == [{}, {}]
        lines = [r.getMessage() for r in caplog.records if "METRICBATCH_DEFAULT_DIMENSIONS" in r.getMessage()]
        assert len(lines) <= 1  # once per value and process (another test may have said it already)
        if lines:
            assert case["ignored"] in lines[0]
    else:
        assert dims == [case["dimensions"], case["dimensions"]]


def test_a_malformed_variable_is_said_once_not_per_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("METRICBATCH_DEFAULT_DIMENSIONS", "Service=cart,oops-once-only")
    caplog.set_level(logging.ERROR)
    for _ in range(3):
        producer = MetricProducer(mode="memory", namespace=NAMESPACE)
        for _ in range(5):
            producer.send_metric("M", 1.0)
    lines = [r for r in caplog.records if "METRICBATCH_DEFAULT_DIMENSIONS" in r.getMessage()]
    assert len(lines) == 1
    assert "dimensions.format" in lines[0].getMessage() and "ignored" in lines[0].getMessage()


def test_explicit_default_dimensions_beat_the_variable_and_are_checked_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRICBATCH_DEFAULT_DIMENSIONS", "Service=env")
    producer = MetricProducer(mode="memory", namespace=NAMESPACE, default_dimensions={"Service": "arg"})
    producer.send_metric("M", 1.0)
    assert [dict(m.dimensions) for m in captured()] == [{"Service": "arg"}]
    with pytest.raises(ConfigurationError, match=r"dimension_value\.empty"):
        MetricProducer(mode="memory", namespace=NAMESPACE, default_dimensions={"Service": ""})


# -- calls: defaults and roll-ups --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", VECTORS["calls"], ids=lambda c: c["id"])
@pytest.mark.parametrize("form", ["send_metric", "series"])
def test_dimension_vectors(case: dict[str, Any], form: str) -> None:
    producer = MetricProducer(mode="memory", namespace=NAMESPACE, default_dimensions=_decode(case.get("defaults")))
    dimensions, rollups = _decode(case.get("dimensions")), case.get("rollups")

    def call() -> None:
        if form == "send_metric":
            producer.send_metric("Latency", 2.5, unit="Milliseconds", dimensions=dimensions, rollups=rollups)
        else:
            producer.series("Latency", unit="Milliseconds", dimensions=dimensions, rollups=rollups).send(2.5)

    if "rule" in case:
        with pytest.raises(InvalidMetricError) as raised:
            call()
        assert raised.value.rule == case["rule"]
        assert captured() == []
        assert producer.stats()["invalid"] == 1
        return
    call()
    call()
    got = captured()
    if "recorded_count" in case:
        assert len(got) == 2 * case["recorded_count"]
        return
    # THEN each call is recorded once under each set, same value, unit and timestamp
    sets = case["recorded"]
    assert [dict(m.dimensions) for m in got] == sets + sets
    assert {(m.value, m.unit, m.name) for m in got} == {(2.5, "Milliseconds", "Latency")}
    assert len({m.timestamp for m in got[: len(sets)]}) == 1


def test_a_bad_value_with_rollups_is_recorded_under_no_set() -> None:
    producer = MetricProducer(mode="memory", namespace=NAMESPACE)
    with pytest.raises(InvalidMetricError):
        producer.send_metric("M", float("nan"), dimensions={"A": "a"}, rollups=[[]])
    assert captured() == []


# -- emf mode: one document, several dimension sets ------------------------------------------------------------------
def test_emf_mode_writes_rollups_as_dimension_sets_of_one_document() -> None:
    stream = io.StringIO()
    producer = MetricProducer(
        mode="emf", namespace=NAMESPACE, emf_stream=stream, handle_sigterm=False, default_dimensions={"Service": "a"}
    )
    producer.send_metric("Latency", 1.0, dimensions={"Route": "/x"}, rollups=[["Service"], []])
    producer.send_metric("Latency", 3.0, dimensions={"Route": "/x"})  # no roll-ups: a document of its own
    assert producer.flush(timeout=5)
    producer.close()
    lines = stream.getvalue().splitlines()
    assert [emf_spec.violations(line) for line in lines] == [[], []]
    documents = sorted((json.loads(line) for line in lines), key=lambda d: d["Latency"])
    assert documents[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Route", "Service"]]
    directive = documents[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Route", "Service"], ["Service"], []]
    assert (documents[0]["Route"], documents[0]["Service"], documents[0]["Latency"]) == ("/x", "a", 1.0)


# -- instrument_boto3 with botocore's Stubber (no network) -----------------------------------------------------------
def _stubbed_sqs() -> tuple[Any, Any, Stubber]:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
    client = session.client("sqs")
    return session, client, Stubber(client)


def test_instrumented_client_made_before_records_each_call_once_even_when_instrumented_twice() -> None:
    producer = MetricProducer(mode="memory", namespace=NAMESPACE)
    session, client, stubber = _stubbed_sqs()
    first = instrument_boto3(session, producer=producer, namespace="Unit/Sdk")
    assert instrument_boto3(session, producer=producer, namespace="Unit/Sdk") is first
    stubber.add_response("list_queues", {"QueueUrls": []})
    stubber.add_client_error("list_queues", service_error_code="ThrottlingException", http_status_code=400)
    with stubber:
        client.list_queues()
        with pytest.raises(Exception, match="ThrottlingException"):
            client.list_queues()
    first.undo()
    with Stubber(client) as again:
        again.add_response("list_queues", {"QueueUrls": []})
        client.list_queues()  # after undo: not recorded
    got = [(m.name, m.value, dict(m.dimensions)) for m in captured()]
    base = {"ServiceId": "SQS", "OperationName": "ListQueues"}
    assert [g for g in got if g[0] == "ApiCallSuccessful"] == [
        ("ApiCallSuccessful", 1.0, base),
        ("ApiCallSuccessful", 0.0, {**base, "ErrorType": "Throttling"}),
        ("ApiCallSuccessful", 0.0, base),
    ]
    assert sorted({g[0] for g in got}) == ["ApiCallDuration", "ApiCallSuccessful", "RetryCount"]
    assert len(got) == 9


class _BrokenProducer(MetricProducer):
    def series(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken on purpose")


def test_instrumentation_never_raises_into_the_sdk_call(caplog: pytest.LogCaptureFixture) -> None:
    session, client, stubber = _stubbed_sqs()
    producer = _BrokenProducer(mode="memory", namespace=NAMESPACE)
    instrumentation = instrument_boto3(session, producer=producer, namespace="Unit/Sdk")
    try:
        stubber.add_response("list_queues", {"QueueUrls": ["u"]})
        with stubber:
            assert client.list_queues()["QueueUrls"] == ["u"]
    finally:
        instrumentation.undo()
    assert any("not recorded" in r.getMessage() for r in caplog.records)


def test_pipeline_operations_are_never_recorded() -> None:
    producer = MetricProducer(mode="memory", namespace=NAMESPACE)
    session, client, stubber = _stubbed_sqs()
    instrumentation = instrument_boto3(session, producer=producer, namespace="Unit/Sdk")
    try:
        stubber.add_response("send_message_batch", {"Successful": [], "Failed": []})
        with stubber:
            client.send_message_batch(QueueUrl="https://q", Entries=[{"Id": "1", "MessageBody": "b"}])
    finally:
        instrumentation.undo()
    assert captured() == []


def test_error_types_are_bounded() -> None:
    seen = {classify_response(status, code) for status in (400, 403, 404, 429, 500, 503) for code in ("X", "SlowDown")}
    assert seen <= set(ERROR_TYPES)
    assert classify_response(400, "ProvisionedThroughputExceededException") == "Throttling"
    assert classify_response(503, "ServiceUnavailable") == "ServerError"


def test_a_failed_call_rolls_up_to_its_series_with_the_default_dimensions_kept() -> None:
    producer = MetricProducer(mode="memory", namespace=NAMESPACE, default_dimensions={"Service": "cart"})
    session, client, stubber = _stubbed_sqs()
    instrumentation = instrument_boto3(session, producer=producer, namespace="Unit/Sdk")
    try:
        stubber.add_client_error("list_queues", service_error_code="InternalError", http_status_code=500)
        with stubber, pytest.raises(Exception, match="InternalError"):
            client.list_queues()
    finally:
        instrumentation.undo()
    base = {"Service": "cart", "ServiceId": "SQS", "OperationName": "ListQueues"}
    assert [dict(m.dimensions) for m in captured("ApiCallSuccessful")] == [{**base, "ErrorType": "ServerError"}, base]

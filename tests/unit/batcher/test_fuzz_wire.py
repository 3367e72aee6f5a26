"""Property-based fuzzing of the wire format and the batcher, against in-process fakes.

Whatever a message body holds, the batcher never raises, never sends a request the strict CloudWatch stand-in
rejects, publishes every valid datum exactly once and sets every invalid message or datum aside in the DLQ.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metricbatch.batcher.batcher import BatcherConfig, MetricBatcher
from metricbatch.exceptions import InvalidMetricError, WireFormatError
from metricbatch.limits import MAX_SQS_MESSAGE_BYTES, UNITS
from metricbatch.wire import ATTR_RULE, ParsedMetric, parse_envelope, parse_metric

from ..fakes import FakeCloudWatch, FakeSqs

QUEUE = "https://fake/queue"
DLQ = "https://fake/dlq"
ALLOWED = "Fuzz/"
NOW = time.time()
DAY = 86400.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- valid pieces --------------------------------------------------------------------------------------------------
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


def _text(max_size: int, *, forbid_colon: bool = False) -> st.SearchStrategy[str]:
    base = st.text(PRINTABLE, min_size=1, max_size=max_size).filter(lambda s: s.strip())
    return base.filter(lambda s: not s.startswith(":")) if forbid_colon else base


names = _text(255)
namespaces = _text(255 - len(ALLOWED)).map(lambda s: ALLOWED + s)
dimensions = st.dictionaries(_text(40, forbid_colon=True), _text(60), max_size=30) | st.dictionaries(
    _text(255, forbid_colon=True), _text(1024), max_size=3
)
BOUND = 2.0**360
values = (
    st.floats(min_value=-BOUND, max_value=BOUND, allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**360), max_value=2**360)
    | st.sampled_from([BOUND, -BOUND, 0.0, -0.0, 5e-324, -1e-300, 2.0**-361, 2.0**-360, -(2.0**-360), 1e-200])
)
TINY = 2.0**-360
# Counts: small integers, fractions, tiny ones (published as 0, then dropped) and ones at the 2^360 bound (merged
# counts of one value then pass it and must spill); at least one count of a metric carries a sample.
counts = st.integers(0, 5) | st.sampled_from([0.5, 5e-324, 1e-300, 2.0**-361, TINY, BOUND])
count_lists = st.lists(counts, min_size=1, max_size=150).filter(lambda cs: any(c >= TINY for c in cs))
timestamps = (
    st.floats(min_value=NOW - 14 * DAY + 120, max_value=NOW + 2 * 3600 - 120)
    | st.integers(min_value=int(NOW - 13 * DAY), max_value=int(NOW + 3600))
    | st.floats(min_value=NOW - 13 * DAY, max_value=NOW + 3600).map(
        lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    )
)


@st.composite
def valid_metrics(draw: st.DrawFn) -> dict[str, Any]:
    metric: dict[str, Any] = {"namespace": draw(namespaces), "name": draw(names)}
    if draw(st.booleans()):
        metric["value"] = draw(values)
    else:
        if draw(st.booleans()):
            metric["counts"] = draw(count_lists)
            metric["values"] = draw(st.lists(values, min_size=len(metric["counts"]), max_size=len(metric["counts"])))
        else:
            metric["values"] = draw(st.lists(values, min_size=1, max_size=150))
    if draw(st.booleans()):
        metric["dimensions"] = draw(dimensions)
    if draw(st.booleans()):
        metric["unit"] = draw(st.sampled_from(sorted(UNITS)))
    if draw(st.booleans()):
        metric["resolution"] = draw(st.sampled_from([1, 60]))
    if draw(st.booleans()):
        metric["timestamp"] = draw(timestamps)
    return metric


# -- invalid pieces: a valid metric with one field broken ---------------------------------------------------------
junk_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
BREAKAGES: dict[str, st.SearchStrategy[Any]] = {
    "value": st.sampled_from([math.nan, math.inf, -math.inf, 2.0**361, -(2**400), 10**400, "12", True, None, [1]]),
    "values": st.sampled_from([[], [math.nan], list(range(151)), "1,2", {"a": 1}]),
    "counts": st.sampled_from(
        [[-1], [1, 2, 3, 4, 5, 6, 7], "x", [math.inf], [0, 0, 0], [5e-324, 0, 1e-300], [2.0**361, 1, 1]]
    ),
    "dimensions": st.sampled_from(
        [
            {f"D{i}": "v" for i in range(31)},
            {"Host": "café"},
            {"Host": ""},
            {":x": "v"},
            {"Host": "v" * 1025},
            {"H" * 256: "v"},
            {"Host": "\n"},
            {"Host": 1},
            ["Host", "a"],
        ]
    ),
    "name": st.sampled_from(["", "   ", "n" * 256, "näme", "tab\t", 7, None]),
    "namespace": st.sampled_from(["AWS/EC2", "Other/Team", ":Fuzz", "", "Fuzz/" + "x" * 251, ["Fuzz/"]]),
    "unit": st.sampled_from(["Furlongs", "ms", "", 1, ["Count"], {"u": 1}, None]),
    "resolution": st.sampled_from([5, 0, True, "60", [60], 60.5]),
    "timestamp": st.sampled_from(
        [NOW - 15 * DAY, NOW + 3 * 3600, "yesterday", True, math.nan, 10**400, [NOW], "0001-01-01T00:00:00Z"]
    ),
    "extra": st.just(1),
}


@st.composite
def invalid_metrics(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from([*sorted(BREAKAGES), "not_an_object", "both", "neither"]))
    metric = draw(valid_metrics())
    if kind == "not_an_object":
        return draw(junk_json.filter(lambda v: not isinstance(v, dict)))
    if kind == "both":
        metric["value"], metric["values"] = 1.0, [1.0]
    elif kind == "neither":
        metric.pop("value", None)
        metric.pop("values", None)
        metric.pop("counts", None)
    elif kind == "extra":
        metric["colour"] = "blue"
    elif kind == "counts":
        metric.pop("value", None)
        metric["values"] = [1.0, 2.0, 3.0]
        metric["counts"] = draw(BREAKAGES["counts"])
    else:
        if kind in ("value", "values"):
            metric.pop("value", None)
            metric.pop("values", None)
            metric.pop("counts", None)
        metric[kind] = draw(BREAKAGES[kind])
    return metric


# -- whole bodies -------------------------------------------------------------------------------------------------
@dataclass
class Message:
    body: str
    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid_positions: list[int] = field(default_factory=list)
    junk: bool = False


@st.composite
def envelopes(draw: st.DrawFn) -> Message:
    entries = draw(st.lists(st.booleans(), min_size=0, max_size=12))
    metrics: list[Any] = []
    message = Message(body="")
    for position, is_valid in enumerate(entries):
        if is_valid:
            metric = draw(valid_metrics())
            message.valid.append(metric)
        else:
            metric = draw(invalid_metrics())
            message.invalid_positions.append(position)
        metrics.append(metric)
    envelope: dict[str, Any] = {"v": 1, "metrics": metrics}
    if draw(st.booleans()):
        envelope["attempt"] = draw(st.integers(0, 3))
    message.body = json.dumps(envelope, allow_nan=True)
    return message


def _junk_body(body: str) -> Message:
    return Message(body=body, junk=True)


junk_bodies = st.one_of(
    st.text(max_size=300).map(lambda s: "#" + s),  # never JSON
    st.binary(max_size=300).map(lambda b: "\x00" + b.decode("latin-1")),  # binary-ish
    st.integers(1, 50_000).map(lambda d: "[" * d + "]" * d),  # deep nesting
    st.integers(1, 50_000).map(lambda d: "{" + '"a":{' * d + "}" * d + "}"),
    junk_json.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v, allow_nan=True)),
    st.sampled_from([0, 2, "1", None, 1.5, True]).map(lambda v: json.dumps({"v": v, "metrics": []})),
    st.sampled_from([None, {}, "[]", 3]).map(lambda m: json.dumps({"v": 1, "metrics": m})),
    st.sampled_from([-1, "2", 1.5, True, None]).map(lambda a: json.dumps({"v": 1, "attempt": a, "metrics": []})),
    st.text(min_size=1, max_size=50)
    .filter(lambda s: "}" not in s)
    .map(lambda s: json.dumps({"v": 1, "metrics": []})[:-1] + s),  # truncated
).map(_junk_body)
bodies = envelopes() | junk_bodies


class RecordingCloudWatch(FakeCloudWatch):
    """The strict fake, counting requests the strict validator refused."""

    def __init__(self) -> None:
        super().__init__(now=lambda: NOW)  # the batcher's clock: the strategies' time bounds are relative to NOW
        self.refused: list[str] = []

    def put_metric_data(self, **params: Any) -> dict[str, Any]:
        try:
            return super().put_metric_data(**params)
        except ClientError as exc:
            self.refused.append(str(exc))
            raise


def _not_json(constant: str) -> Any:
    raise AssertionError(f"a DLQ body holds {constant}, which JSON does not allow")


def _nonzero(samples: dict[float, float]) -> dict[float, float]:
    return {value: count for value, count in samples.items() if count}


def _rounded(value: float) -> float:
    """The documented rule, restated: a magnitude below 2^-360 is published as 0."""
    return 0.0 if abs(value) < 2.0**-360 else float(value)


def _expected_samples(metrics: list[dict[str, Any]]) -> dict[float, float]:
    samples: dict[float, float] = defaultdict(float)
    for m in metrics:
        if "value" in m:
            samples[_rounded(m["value"])] += 1
        else:
            counts = m.get("counts") or [1] * len(m["values"])
            for v, c in zip(m["values"], counts, strict=True):
                samples[_rounded(v)] += _rounded(c)
    return samples


def _run_batch(messages: list[Message]) -> tuple[RecordingCloudWatch, FakeSqs, list[str]]:
    cloudwatch, sqs = RecordingCloudWatch(), FakeSqs()
    config = BatcherConfig(dlq_url=DLQ, queue_url=QUEUE, allowed_namespaces=(ALLOWED,))
    batcher = MetricBatcher(config, cloudwatch=cloudwatch, sqs=sqs, clock=lambda: NOW, sleep=lambda s: None)
    for i, message in enumerate(messages):
        batcher.add_record(f"m-{i}", message.body, sent_timestamp_ms=int(NOW * 1000))
    return cloudwatch, sqs, batcher.finish()


def _boundary_message() -> Message:
    metrics: list[dict[str, Any]] = [
        {"namespace": "Fuzz/x", "name": "n", "value": 2.0**360},
        {"namespace": "Fuzz/x", "name": "n", "value": -(2**360)},
        {
            "namespace": "Fuzz/x",
            "name": "n",
            "values": list(range(150)),
            "dimensions": {f"D{i}": "v" for i in range(30)},
        },
        {"namespace": "Fuzz/x", "name": "n", "value": 1, "timestamp": NOW - 14 * DAY + 120},
    ]
    return Message(body=json.dumps({"v": 1, "metrics": metrics}), valid=metrics)


def _merge_edge_message() -> Message:
    # One series and minute: tiny values next to valid ones, zero and tiny counts, and counts of one value that
    # add up past 2^360 (each alone is valid; merged they must spill into a datum of their own).
    ts = NOW - 60
    base = {"namespace": "Fuzz/edge", "name": "n", "timestamp": ts}
    metrics: list[dict[str, Any]] = [
        {**base, "value": 1e-200},
        {**base, "values": [1.0, 2.0, 5e-324], "counts": [0, 3, 1]},
        {**base, "values": [7.0, 8.0], "counts": [BOUND, 1e-300]},
        {**base, "values": [7.0], "counts": [BOUND]},
        {**base, "values": [7.0, 1.0], "counts": [BOUND, 1]},
        *({**base, "value": float(i)} for i in range(100)),
    ]
    return Message(body=json.dumps({"v": 1, "metrics": metrics}), valid=metrics)


# -- properties ---------------------------------------------------------------------------------------------------
@FUZZ
@given(st.lists(bodies, min_size=1, max_size=8))
@example([_boundary_message()])
@example([_merge_edge_message()])
def test_batcher_publishes_every_valid_datum_and_sets_aside_every_invalid_one(messages: list[Message]) -> None:
    # WHEN a batch of arbitrary bodies goes through the batcher
    cloudwatch, sqs, failed = _run_batch(messages)

    # THEN no record fails, CloudWatch never refuses a request, and every valid sample is published once
    assert failed == []
    assert cloudwatch.refused == []
    valid = [m for message in messages for m in message.valid]
    published: dict[float, float] = defaultdict(float)
    for value, count in cloudwatch.samples():
        published[value] += count
    assert _nonzero(published) == _nonzero(_expected_samples(valid))
    assert all(r["Namespace"].startswith(ALLOWED) for r in cloudwatch.requests)
    assert sqs.messages(QUEUE) == []  # nothing re-queued: CloudWatch was up

    # AND every junk body is in the DLQ as it came, and every invalid datum with its position and rule
    dlq = sqs.messages(DLQ)
    raw = Counter(m["Body"] for m in dlq if m["Attributes"][ATTR_RULE].startswith(("body.", "envelope.")))
    assert raw == Counter(message.body for message in messages if message.junk)
    set_aside: dict[str, list[int]] = {}
    for m in dlq:
        if m["Attributes"][ATTR_RULE].startswith(("body.", "envelope.")):
            continue
        data = json.loads(m["Body"], parse_constant=_not_json)  # strict JSON: any consumer can parse it
        assert [e["index"] for e in data["errors"]] == list(range(len(data["metrics"])))
        set_aside.setdefault(data["source_message_id"], []).extend(e["position"] for e in data["errors"])
    expected = {f"m-{i}": msg.invalid_positions for i, msg in enumerate(messages) if msg.invalid_positions}
    assert set_aside == expected


@FUZZ
@given(st.text(max_size=2000) | st.binary(max_size=2000))
def test_parse_envelope_raises_only_wire_format_errors(body: str | bytes) -> None:
    try:
        envelope = parse_envelope(body)
    except WireFormatError as exc:
        assert exc.rule.startswith(("body.", "envelope."))
    else:
        assert envelope["v"] == 1 and isinstance(envelope["metrics"], list)


@FUZZ
@given(junk_json | valid_metrics() | invalid_metrics())
def test_parse_metric_raises_only_invalid_metric_errors(raw: Any) -> None:
    try:
        metric = parse_metric(raw, NOW, NOW)
    except InvalidMetricError as exc:
        assert exc.rule and exc.detail
    else:
        assert isinstance(metric, ParsedMetric)
        assert all(math.isfinite(v) and abs(v) <= 2.0**360 for v in metric.values)


@FUZZ
@given(invalid_metrics())
def test_every_broken_metric_is_rejected(raw: Any) -> None:
    with pytest.raises(InvalidMetricError):
        metric = parse_metric(raw, NOW, NOW)
        if metric.series.namespace.startswith(ALLOWED):
            return
        raise InvalidMetricError("namespace.not_allowed", "outside the allowlist")


@FUZZ
@given(valid_metrics())
def test_every_valid_metric_is_accepted(raw: dict[str, Any]) -> None:
    metric = parse_metric(json.loads(json.dumps(raw)), NOW, NOW)
    assert metric.series.namespace == raw["namespace"]


# -- big bodies, built directly (generating megabytes through hypothesis is slow) --------------------------------
def _near_limit_envelope(metric: dict[str, Any], limit: int = MAX_SQS_MESSAGE_BYTES - 2048) -> str:
    one = json.dumps(metric)
    count = (limit - 20) // (len(one) + 2)
    body = json.dumps({"v": 1, "metrics": [metric] * count})
    assert len(body) <= MAX_SQS_MESSAGE_BYTES
    return body


def test_a_message_near_1_mib_of_valid_metrics_is_published_whole() -> None:
    dims = {f"D{i}": f"value-{i}-" + "x" * 20 for i in range(30)}
    body = _near_limit_envelope(
        {"namespace": "Fuzz/Big", "name": "Wide", "values": list(range(150)), "dimensions": dims}
    )
    count = len(json.loads(body)["metrics"])

    cloudwatch, sqs, failed = _run_batch([Message(body=body)])

    assert failed == [] and cloudwatch.refused == []
    assert cloudwatch.sample_count() == 150 * count
    assert sqs.messages(DLQ) == []


def test_a_message_near_1_mib_of_invalid_metrics_is_set_aside_whole() -> None:
    # Every metric invalid: the reasons make the set-aside bigger than the message; it must still reach the DLQ.
    body = _near_limit_envelope({"namespace": "Fuzz/Big", "name": "Bad", "value": 1, "unit": "ms"})
    good = json.dumps({"v": 1, "metrics": [{"namespace": "Fuzz/Big", "name": "Good", "value": 3}]})
    count = len(json.loads(body)["metrics"])

    cloudwatch, sqs, failed = _run_batch([Message(body=body), Message(body=good)])

    assert failed == []
    assert cloudwatch.sample_count("Good") == 1
    dlq = [json.loads(m["Body"]) for m in sqs.messages(DLQ)]
    assert len(dlq) >= 2
    assert sum(len(d["metrics"]) for d in dlq) == count
    assert sorted(e["position"] for d in dlq for e in d["errors"]) == list(range(count))
    assert all([e["index"] for e in d["errors"]] == list(range(len(d["metrics"]))) for d in dlq)
    assert all(len(m["Body"].encode()) < MAX_SQS_MESSAGE_BYTES for m in sqs.messages(DLQ))


def test_a_body_over_1_mib_is_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("json.loads was called on an oversized body")

    monkeypatch.setattr("metricbatch.wire.json.loads", no_parsing)
    body = '{"v":1,"metrics":[],"pad":"' + "a" * MAX_SQS_MESSAGE_BYTES + '"}'
    with pytest.raises(WireFormatError) as caught:
        parse_envelope(body)
    assert caught.value.rule == "body.size"
    with pytest.raises(WireFormatError):
        parse_envelope("é" * (MAX_SQS_MESSAGE_BYTES // 2 + 1))  # counted in UTF-8 bytes, not characters


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deep_nesting_is_a_wire_format_error(depth: int) -> None:
    with pytest.raises(WireFormatError) as caught:
        parse_envelope("[" * depth + "]" * depth)
    assert caught.value.rule in ("body.nesting", "envelope.type")

"""Issue 12: one ``send_metric`` everywhere. Modes sqs | emf | memory | off through the public API, the mode chosen
for a host with no usable setting, EMF lines checked against the specification, fork and exit in every mode."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import metricbatch
from metricbatch import ConfigurationError, InvalidMetricError, MetricProducer, timer
from metricbatch.producer.config import NO_DESTINATION, ProducerConfig
from metricbatch.testing import CapturedMetric, captured, clear, values

from ..conftest import in_forked_child
from . import emf_spec
from .test_producer import BAD_CALLS

REPO = Path(__file__).resolve().parents[3]
NOW = time.time()


@pytest.fixture(autouse=True)
def clean_slate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No METRICBATCH_* setting, no default producer, nothing captured; and the same after the test."""
    for name in ("METRICBATCH_QUEUE_URL", "METRICBATCH_NAMESPACE", "METRICBATCH_MODE"):
        monkeypatch.delenv(name, raising=False)
    previous = metricbatch.set_default_producer(None)
    clear()
    yield
    made = metricbatch.set_default_producer(previous)
    if made is not None and made is not previous:
        made.close(timeout=2)
    clear()


def _run(script: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter with no METRICBATCH_* or AWS_* setting, plus ``env``."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICBATCH_", "AWS_"))}
    child_env.update(env or {}, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env,
        check=False,
    )


# -- which mode ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("explicit", "from_env", "queue_url", "mode", "reason_names"),
    [
        (None, None, "https://q", "sqs", []),
        (None, None, None, "off", ["METRICBATCH_QUEUE_URL", "METRICBATCH_MODE"]),
        (None, "emf", None, "emf", []),
        (None, " Memory ", "https://q", "memory", []),  # the variable beats the queue URL; case and spaces forgiven
        ("off", "emf", "https://q", "off", []),  # explicit beats the environment
        ("emf", "memory", None, "emf", []),
        (None, "sqs", None, "off", ["METRICBATCH_MODE='sqs'", "METRICBATCH_QUEUE_URL"]),
        ("sqs", None, None, "off", ["mode='sqs'", "METRICBATCH_QUEUE_URL"]),
        (None, "stdout", "https://q", "off", ["METRICBATCH_MODE='stdout'", "sqs, emf, memory, off"]),
    ],
)
def test_the_mode_explicit_beats_environment_beats_the_queue_default(
    explicit: str | None, from_env: str | None, queue_url: str | None, mode: str, reason_names: list[str]
) -> None:
    env = {"METRICBATCH_QUEUE_URL": queue_url} if queue_url else {}
    if from_env is not None:
        env["METRICBATCH_MODE"] = from_env
    config = ProducerConfig.from_env(env, mode=explicit)
    assert config.mode == mode
    assert bool(config.mode_reason) == bool(reason_names)
    for name in reason_names:
        assert name in config.mode_reason


def test_an_explicit_mode_that_is_not_one_is_a_configuration_error_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"mode must be one of sqs, emf, memory, off; got 'stdout'"):
        MetricProducer(mode="stdout")


# -- a host with no setting at all -----------------------------------------------------------------------------------
def test_no_queue_url_and_no_mode_discards_counts_and_says_why_without_raising() -> None:
    # GIVEN a host with neither METRICBATCH_QUEUE_URL nor METRICBATCH_MODE (clean_slate)
    # WHEN the module helpers are used as in a request path
    for i in range(5):
        metricbatch.send_metric("Checkout", float(i), namespace="Shop")
    metricbatch.series("Hits", namespace="Shop").send(1.0)
    # THEN nothing raised; the metrics were validated and discarded, counted, and stats() says why
    stats = metricbatch.stats()
    assert (stats["mode"], stats["discarded"], stats["accepted"], stats["sent"]) == ("off", 6, 6, 0)
    assert stats["mode_reason"] == NO_DESTINATION
    # AND flush() reports them as not delivered
    assert metricbatch.flush(timeout=1) is False
    assert metricbatch.flush(timeout=1) is True  # nothing new since
    # AND a bad metric still raises at the call
    with pytest.raises(InvalidMetricError, match=r"\[rule: value.finite\]"):
        metricbatch.send_metric("Checkout", float("nan"), namespace="Shop")
    assert metricbatch.stats()["invalid"] == 1


def test_a_misconfigured_host_warns_once_in_a_child_process_and_never_raises() -> None:
    result = _run(
        """
        import json, metricbatch
        for i in range(1000):
            metricbatch.send_metric("Requests", 1.0, namespace="Shop", dimensions={"Host": f"h{i % 3}"})
        handle = metricbatch.series("Latency", unit="Milliseconds", namespace="Shop")
        handle.send(12.5)
        metricbatch.set_default_producer(None)  # a new default producer: still not a second warning
        metricbatch.send_metric("Requests", 1.0, namespace="Shop")
        print(json.dumps({"flush": metricbatch.flush(1), "stats": metricbatch.stats()}))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1, warnings
    assert "METRICBATCH_QUEUE_URL" in warnings[0] and "METRICBATCH_MODE" in warnings[0]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["flush"] is False
    assert (report["stats"]["mode"], report["stats"]["discarded"]) == ("off", 1)  # the second default producer's
    assert "METRICBATCH_QUEUE_URL" in report["stats"]["mode_reason"]


# -- memory ----------------------------------------------------------------------------------------------------------
def test_memory_mode_captures_every_call_through_the_module_helpers(metricbatch_metrics: Any) -> None:
    # WHEN code under test uses send_metric, a series handle and timer
    ts = NOW - 90
    metricbatch.send_metric("Orders", 2, unit="Count", namespace="Shop", dimensions={"Service": "cart"}, timestamp=ts)
    metricbatch.send_metric("Orders", 3, unit="Count", namespace="Shop", dimensions={"Service": "cart"}, timestamp=ts)
    metricbatch.series("Latency", unit="Milliseconds", namespace="Shop", storage_resolution=1).send(12.5)
    with timer("Db.Get", namespace="Shop"):
        pass
    # THEN each call is one captured metric, with everything a test may assert on
    orders = metricbatch_metrics.captured("Orders")
    assert orders == [
        CapturedMetric("Shop", "Orders", 2.0, "Count", {"Service": "cart"}, ts, 60),
        CapturedMetric("Shop", "Orders", 3.0, "Count", {"Service": "cart"}, ts, 60),
    ]
    (latency,) = captured("Latency", namespace="Shop")
    assert (latency.value, latency.unit, latency.storage_resolution) == (12.5, "Milliseconds", 1)
    assert abs(latency.timestamp - time.time()) < 60  # default: when it was sent
    assert values("Db.Get.Success") == [1.0] and values("Db.Get.Error") == [0.0]
    assert metricbatch_metrics.values("Orders", dimensions={"Service": "cart"}) == [2.0, 3.0]
    assert metricbatch_metrics.values("Orders", dimensions={"Service": "other"}) == []
    assert len(metricbatch_metrics) == 6
    stats = metricbatch.stats()
    assert (stats["mode"], stats["captured"], stats["sent"], stats["mode_reason"]) == ("memory", 6, 0, "")
    assert metricbatch.flush() is True


@pytest.mark.parametrize(("label", "override", "rule"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_memory_mode_rejects_exactly_what_production_rejects(
    metricbatch_metrics: Any, label: str, override: dict[str, Any], rule: str
) -> None:
    call: dict[str, Any] = {"name": "Latency", "value": 2.0, "namespace": "Shop", "dimensions": {"Host": "a"}}
    call.update(override)
    name, value = call.pop("name"), call.pop("value")
    with pytest.raises(InvalidMetricError) as info:
        metricbatch.send_metric(name, value, **call)
    assert info.value.rule == rule
    assert metricbatch_metrics.captured() == []
    assert metricbatch.stats()["invalid"] == 1


def test_memory_mode_without_a_namespace_uses_the_default_as_production_does(metricbatch_metrics: Any) -> None:
    metricbatch.send_metric("Orders", 1.0)
    assert metricbatch_metrics.values("Orders", namespace="metricbatch/default") == [1.0]


def test_producers_the_code_under_test_makes_capture_too(
    metricbatch_metrics: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN code that builds its own producer from the environment, even with a queue URL configured
    monkeypatch.setenv("METRICBATCH_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/q")
    own = MetricProducer(namespace="Own")
    own.send_metric("Made", 1.0)
    # THEN the fixture's METRICBATCH_MODE=memory applies to it: nothing goes to a queue
    assert own.mode == "memory"
    assert metricbatch_metrics.values("Made", namespace="Own") == [1.0]


def test_explicit_memory_producer_and_clear() -> None:
    producer = MetricProducer(mode="memory", namespace="Unit")
    producer.send_metric("A", 1.0)
    producer.series("B").send(2.0)
    assert [(m.name, m.value) for m in captured()] == [("A", 1.0), ("B", 2.0)]
    clear()
    assert captured() == []
    assert producer.stats()["captured"] == 2  # counters stay the producer's


# -- off -------------------------------------------------------------------------------------------------------------
def test_off_mode_validates_discards_and_counts() -> None:
    producer = MetricProducer(mode="off", namespace="Unit")
    for i in range(10):
        producer.send_metric("Ignored", float(i))
    with pytest.raises(InvalidMetricError, match=r"rule: unit.unknown"):
        producer.send_metric("Ignored", 1.0, unit="ms")
    stats = producer.stats()
    assert (stats["mode"], stats["discarded"], stats["invalid"], stats["mode_reason"]) == ("off", 10, 1, "")
    assert captured() == []
    assert producer.flush() is True  # chosen: nothing was meant to be delivered


# -- emf -------------------------------------------------------------------------------------------------------------
def _emf_producer(stream: io.StringIO, **options: Any) -> MetricProducer:
    return MetricProducer(mode="emf", namespace="Shop/EMF", emf_stream=stream, handle_sigterm=False, **options)


def _emf_samples(lines: list[str]) -> dict[tuple[Any, ...], list[float]]:
    by_series: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for line in lines:
        assert emf_spec.violations(line) == [], line[:300]
        for namespace, name, dims, value, _ts, unit, resolution in emf_spec.samples(line):
            by_series[(namespace, name, tuple(sorted(dims.items())), unit, resolution)].append(value)
    return by_series


def test_emf_lines_follow_the_spec_and_carry_every_sample_exactly() -> None:
    stream = io.StringIO()
    producer = _emf_producer(stream)
    # GIVEN 150 series of one namespace and dimension set (more than 100 metrics), one busy series with repeated
    # and distinct values (more than 100 samples), high resolution, and 30 dimensions
    expected: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    dims = {"Service": "cart"}
    for i in range(150):
        producer.send_metric(f"M{i:03}", float(i), unit="Count", dimensions=dims)
        expected[("Shop/EMF", f"M{i:03}", (("Service", "cart"),), "Count", 60)].append(float(i))
    for i in range(1000):
        value = float(i % 7) if i % 2 else i / 4
        producer.send_metric("Latency", value, unit="Milliseconds", dimensions=dims)
        expected[("Shop/EMF", "Latency", (("Service", "cart"),), "Milliseconds", 60)].append(value)
    producer.send_metric("Fast", 1.5, storage_resolution=1)
    expected[("Shop/EMF", "Fast", (), "None", 1)].append(1.5)
    wide = {f"D{i:02}": f"v{i}" for i in range(30)}
    producer.send_metric("Wide", 4.0, dimensions=wide)
    expected[("Shop/EMF", "Wide", tuple(sorted(wide.items())), "None", 60)].append(4.0)
    # WHEN flushed
    assert producer.flush(timeout=10) is True
    lines = stream.getvalue().splitlines()
    # THEN every line is a valid EMF document, and together they hold every sample once
    got = _emf_samples(lines)
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in expected.items()}
    # AND the limits shaped the documents: at most 100 metrics each, arrays of at most 100 values
    directives = [json.loads(line)["_aws"]["CloudWatchMetrics"][0] for line in lines]
    assert max(len(d["Metrics"]) for d in directives) == 100
    assert len(lines) >= 11  # 1,000 Latency samples: at least 10 arrays, each in a document of its own
    stats = producer.stats()
    assert (stats["emf_published"], stats["emf_documents"], stats["dropped"]) == (1152, len(lines), 0)
    producer.close()


def test_emf_aggregates_per_series_and_bucket_with_the_bucket_as_timestamp() -> None:
    stream = io.StringIO()
    producer = _emf_producer(stream)
    minute = (NOW // 60) * 60 - 120
    for second in (1, 5, 59):
        producer.send_metric("Hits", 1.0, unit="Count", timestamp=minute + second)
    producer.send_metric("Hits", 1.0, unit="Count", timestamp=minute + 60)  # the next minute
    assert producer.flush(timeout=5)
    documents = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((d["_aws"]["Timestamp"], d["Hits"]) for d in documents) == [
        (int(minute * 1000), [1.0, 1.0, 1.0]),
        (int((minute + 60) * 1000), 1.0),
    ]
    producer.close()


def test_emf_cannot_carry_a_metric_named_like_its_dimension_and_counts_the_drop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="metricbatch")
    stream = io.StringIO()
    producer = _emf_producer(stream)
    producer.send_metric("Host", 1.0, dimensions={"Host": "a"})  # both would be the root member "Host"
    producer.send_metric("Fine", 2.0, dimensions={"Host": "a"})
    assert producer.flush(timeout=5) is False
    assert [sorted(json.loads(line)) for line in stream.getvalue().splitlines()] == [["Fine", "Host", "_aws"]]
    stats = producer.stats()
    assert (stats["emf_published"], stats["dropped"], stats["dropped_undeliverable"]) == (1, 1, 1)
    producer.close()
    assert any("EMF cannot carry metric 'Host'" in r.getMessage() for r in caplog.records)


def test_emf_refuses_a_dimension_key_the_emf_schema_does_not_allow_and_keeps_the_rest() -> None:
    # GIVEN keys of 250 and 251 characters: PutMetricData takes both (255), the EMF schema only the first
    stream = io.StringIO()
    producer = _emf_producer(stream)
    ok, long = "K" * 250, "L" * 251
    producer.send_metric("Hits", 1.0, dimensions={ok: "a"})
    # WHEN the longer one is sent in emf mode THEN the call says which rule, at the edge
    with pytest.raises(InvalidMetricError) as raised:
        producer.send_metric("Hits", 2.0, dimensions={long: "b"})
    assert raised.value.rule == "emf.dimension_name.length" and "250" in str(raised.value)
    with pytest.raises(InvalidMetricError):
        producer.series("Hits", dimensions={long: "b"})
    # AND the valid metric is still written, schema-valid; the refusal is counted as invalid
    assert producer.flush(timeout=5) is True
    assert [d["Hits"] for d in map(json.loads, stream.getvalue().splitlines())] == [1.0]
    assert _emf_samples(stream.getvalue().splitlines())
    assert producer.stats()["invalid"] == 2
    producer.close()
    # AND the queue's modes keep PutMetricData's 255
    memory = MetricProducer(mode="memory", namespace="Shop/EMF")
    memory.send_metric("Hits", 2.0, dimensions={long: "b"})
    memory.close()


def test_the_vendored_schema_rejects_what_the_spec_rejects() -> None:
    # (so validating every document against it can fail)
    good = {"_aws": {"Timestamp": 1_700_000_000_000, "CloudWatchMetrics": [
        {"Namespace": "N", "Dimensions": [["K" * 250]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
        "K" * 250: "v", "M": 1.0}  # fmt: skip
    assert emf_spec.schema_errors(good) == []
    bad_key = json.loads(json.dumps(good).replace("K" * 250, "K" * 251))
    bad_unit = json.loads(json.dumps(good).replace('"Count"', '"Counts"'))
    too_many = json.loads(json.dumps(good).replace(json.dumps(["K" * 250]), json.dumps([f"D{i}" for i in range(31)])))
    for document in (bad_key, bad_unit, too_many):
        assert len(emf_spec.schema_errors(document)) == 1


def test_emf_350_distinct_values_of_one_series_minute_take_4_documents_not_5() -> None:
    stream = io.StringIO()
    producer = _emf_producer(stream)
    minute = (NOW // 60) * 60 - 120
    for i in range(350):  # distinct: the wire splits them 150 + 150 + 50 before EMF sees them
        producer.send_metric("Latency", i + 0.5, unit="Milliseconds", timestamp=minute + 1)
    assert producer.flush(timeout=5) is True
    lines = stream.getvalue().splitlines()
    assert sorted(len(json.loads(line)["Latency"]) for line in lines) == [50, 100, 100, 100]
    assert sorted(_emf_samples(lines)[("Shop/EMF", "Latency", (), "Milliseconds", 60)]) == [i + 0.5 for i in range(350)]
    producer.close()


def test_emf_writes_to_the_current_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    producer = MetricProducer(mode="emf", namespace="Shop", handle_sigterm=False)
    producer.send_metric("Hits", 3.0, unit="Count")
    assert producer.flush(timeout=5)
    (line,) = capsys.readouterr().out.splitlines()
    assert emf_spec.violations(line) == []
    assert json.loads(line)["Hits"] == 3.0
    producer.close()


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_emf_lines_are_written_at_exit_and_on_sigterm_without_flush(ending: str) -> None:
    # GIVEN a process in emf mode (METRICBATCH_MODE) that sends and then ends without flush()
    kill = "import os, signal; os.kill(os.getpid(), signal.SIGTERM); import time; time.sleep(30)"
    result = _run(
        f"""
        import metricbatch
        for i in range(250):
            metricbatch.send_metric("Exits", 0.5, namespace="Shop", dimensions={{"Host": f"h{{i % 2}}"}})
        {kill if ending == "sigterm" else ""}
        """,
        {"METRICBATCH_MODE": "emf"},
    )
    # THEN its metrics are on stdout, and SIGTERM still ended the process
    assert result.returncode == (-15 if ending == "sigterm" else 0), result.stderr
    got = _emf_samples(result.stdout.splitlines())
    assert {k[2]: len(v) for k, v in got.items()} == {(("Host", "h0"),): 125, (("Host", "h1"),): 125}


def test_emf_after_fork_each_process_writes_exactly_its_own_metrics() -> None:
    result = _run(
        """
        import os, sys, metricbatch
        for _ in range(3):
            metricbatch.send_metric("Forked", 1.0, namespace="Shop", dimensions={"Who": "parent"})
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        for _ in range(2):
            metricbatch.send_metric("Forked", 1.0, namespace="Shop", dimensions={"Who": who})
        metricbatch.flush(5)
        sys.stdout.flush()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        """,
        {"METRICBATCH_MODE": "emf"},
    )
    assert result.returncode == 0, result.stderr
    got = _emf_samples(result.stdout.splitlines())
    assert {k[2]: len(v) for k, v in got.items()} == {(("Who", "parent"),): 5, (("Who", "child"),): 2}


@pytest.mark.parametrize("mode", ["memory", "off"])
def test_memory_and_off_after_fork_the_child_starts_from_zero(mode: str) -> None:
    producer = MetricProducer(mode=mode, namespace="Unit")
    producer.send_metric("Before", 1.0)

    def child_view() -> dict[str, Any]:
        producer.send_metric("After", 2.0)
        return {"stats": producer.stats(), "captured": [m.name for m in captured()]}

    child = in_forked_child(child_view)
    counter = "captured" if mode == "memory" else "discarded"
    assert (child["stats"][counter], child["stats"]["accepted"]) == (1, 1)
    assert child["captured"] == (["After"] if mode == "memory" else [])
    assert producer.stats()[counter] == 1  # the parent's own
    assert [m.name for m in captured()] == (["Before"] if mode == "memory" else [])

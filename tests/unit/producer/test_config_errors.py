"""Issue 15 item 1: an answer from SQS that no retry can fix is a configuration error, said once, shown in stats(),
never a reason to publish directly; the metrics are held within the bound and offered again until the fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError

from ..conftest import QUEUE_URL, ProducerFactory, RecordedSleeps, wire_samples
from ..fakes import FakeCloudWatch, FakeSqs, client_error


class SteppingClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SwitchableSqs(FakeSqs):
    """A queue that refuses with ``error`` until ``error`` is set to None (the setting was fixed)."""

    def __init__(self, error: BaseException | None) -> None:
        super().__init__(raise_for=lambda url: self.error)
        self.error = error


REFUSALS = {
    "NonExistentQueue": (client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "SendMessageBatch"), "QUEUE_URL"),
    "QueueDoesNotExist": (client_error("QueueDoesNotExist", 400, "SendMessageBatch"), "METRICBATCH_QUEUE_URL"),
    "AccessDenied": (client_error("AccessDenied", 403, "SendMessageBatch"), "sqs:SendMessage"),
    "KmsAccessDenied": (client_error("KmsAccessDenied", 400, "SendMessageBatch"), "kms:GenerateDataKey"),
    "KMS.AccessDeniedException": (client_error("KMS.AccessDeniedException", 400, "SendMessageBatch"), "KMS key"),
    "InvalidClientTokenId": (client_error("InvalidClientTokenId", 403, "SendMessageBatch"), "credentials"),
    "NoCredentialsError": (NoCredentialsError(), "credentials"),
    "InvalidAddress": (client_error("InvalidAddress", 404, "SendMessageBatch"), "AWS_REGION"),
}


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("code", list(REFUSALS))
def test_a_refusal_no_retry_fixes_holds_the_metrics_says_so_once_and_never_falls_back(
    make_producer: ProducerFactory,
    fake_cloudwatch: FakeCloudWatch,
    no_backoff: RecordedSleeps,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    caplog.set_level(logging.INFO, logger="metricbatch")
    error, names = REFUSALS[code]
    sqs = SwitchableSqs(error)
    producer = make_producer(sqs_client=sqs, sleep=no_backoff, monotonic=SteppingClock())
    # WHEN metrics are sent and flushed, twice
    for i in range(20):
        producer.send_metric("Latency", float(i % 4))
    assert producer.flush(timeout=30) is False  # returns at once: waiting would not help
    producer.send_metric("Latency", 9.0)
    assert producer.flush(timeout=30) is False
    # THEN SQS was asked once, without retries, and CloudWatch never: the fallback is for outages only
    assert sqs.calls == 1
    assert no_backoff == []
    assert fake_cloudwatch.attempts == 0
    # AND the metrics are held, not dropped, and stats() says why
    stats = producer.stats()
    assert (stats["sent"], stats["fallback_published"], stats["dropped"], stats["buffered"]) == (0, 0, 0, 21)
    assert code in stats["config_error"] and names in stats["config_error"]
    assert QUEUE_URL in stats["config_error"]
    # AND one ERROR line said it, naming the setting and what happens to the metrics
    (line,) = _errors(caplog)
    assert code in line and names in line
    assert "held in memory" in line and "not published directly" in line and "tried again every 30 s" in line


def test_the_held_metrics_are_sent_once_the_queue_accepts_them(
    make_producer: ProducerFactory, fake_cloudwatch: FakeCloudWatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="metricbatch")
    clock = SteppingClock()
    sqs = SwitchableSqs(client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "SendMessageBatch"))
    producer = make_producer(sqs_client=sqs, monotonic=clock, queue_retry_interval=30.0)
    for i in range(100):
        producer.send_metric("Held", float(i % 10))
    assert producer.flush(timeout=30) is False
    # WHEN more metrics arrive before the retry is due THEN SQS is not asked again
    for i in range(50):
        producer.send_metric("Held", 100.0 + i % 5)
    clock.now += 29
    assert producer.flush(timeout=30) is False
    assert sqs.calls == 1
    # WHEN the queue is fixed and the retry is due
    sqs.error = None
    clock.now += 2
    assert producer.flush(timeout=30) is True
    # THEN every metric, held and new, reached the queue exactly once, nothing went to CloudWatch
    expected = [("Held", float(i % 10)) for i in range(100)] + [("Held", 100.0 + i % 5) for i in range(50)]
    assert wire_samples(sqs.metrics(QUEUE_URL)) == sorted(expected)
    assert fake_cloudwatch.attempts == 0
    stats = producer.stats()
    assert (stats["sent"], stats["buffered"], stats["config_error"], stats["queue_retries"]) == (150, 0, "", 1)
    # AND the log says it started and ended, once each
    assert len(_errors(caplog)) == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "metricbatch: SQS no longer refuses the queue; delivery resumed"
    ]


def test_while_held_the_bound_holds_and_drops_are_counted(make_producer: ProducerFactory) -> None:
    sqs = SwitchableSqs(client_error("KmsAccessDenied", 400, "SendMessageBatch"))
    producer = make_producer(sqs_client=sqs, max_buffered=10, monotonic=SteppingClock())
    producer.send_metric("Bound", 0.0)
    assert producer.flush(timeout=30) is False
    for i in range(30):
        producer.send_metric("Bound", float(i))  # 0.0 is held already: it only raises a count
    stats = producer.stats()
    assert stats["buffered_values"] == 10
    assert (stats["buffered"], stats["dropped"], stats["dropped_buffer_full"]) == (11, 20, 20)


def test_closing_while_held_counts_what_was_never_sent(
    make_producer: ProducerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="metricbatch")
    sqs = SwitchableSqs(client_error("AccessDenied", 403, "SendMessageBatch"))
    producer = make_producer(sqs_client=sqs, monotonic=SteppingClock())
    for i in range(7):
        producer.send_metric("Lost", float(i))
    assert producer.flush(timeout=30) is False
    producer.close(timeout=30)
    stats = producer.stats()
    assert (stats["dropped"], stats["dropped_misconfigured"], stats["buffered"]) == (7, 7, 0)
    assert _errors(caplog)[-1] == (
        "metricbatch dropped 7 metric(s) in total (buffer full: 0, SQS and CloudWatch unavailable: 0, "
        "held for a wrong setting until exit: 7)"
    )


def test_an_outage_still_uses_the_fallback(
    make_producer: ProducerFactory, fake_cloudwatch: FakeCloudWatch, no_backoff: RecordedSleeps
) -> None:
    # GIVEN SQS answering 503 (an outage, not a setting)
    sqs = SwitchableSqs(client_error("ServiceUnavailable", 503, "SendMessageBatch"))
    producer = make_producer(sqs_client=sqs, sleep=no_backoff)
    producer.send_metric("Outage", 1.0)
    assert producer.flush(timeout=30) is True
    stats: dict[str, Any] = producer.stats()
    assert (stats["fallback_published"], stats["config_error"]) == (1, "")
    assert fake_cloudwatch.total("Outage") == 1.0

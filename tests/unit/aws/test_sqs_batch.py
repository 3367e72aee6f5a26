"""SqsBatchSender: SendMessageBatch limits, retry of just the failed entries, permanent failures."""

from __future__ import annotations

from collections import Counter

from metricbatch.aws.sqs import OutgoingMessage, SqsBatchSender, batches_of

from ..fakes import FakeClock, FakeSqs, client_error, connection_error

QUEUE = "https://sqs.fake/123/q"


def messages(count: int, size: int = 10) -> list[OutgoingMessage]:
    return [OutgoingMessage(body=f"{i:06d}" + "x" * (size - 6), context=i) for i in range(count)]


def test_batches_hold_at_most_ten_entries() -> None:
    assert [len(b) for b in batches_of(messages(25))] == [10, 10, 5]
    assert batches_of([]) == []


def test_batches_hold_at_most_one_mib() -> None:
    batches = batches_of(messages(5, size=400 * 1024))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(m.size_bytes for m in b) <= 1024 * 1024 for b in batches)


def test_attributes_count_toward_the_size() -> None:
    message = OutgoingMessage(body="abc", attributes={"k": "vé"})
    assert message.size_bytes == 3 + 1 + 3 + len("String")


def test_only_failed_entries_are_resent_and_every_message_arrives_once() -> None:
    sqs = FakeSqs(fail_entries=lambda call, entry_id: call == 1 and entry_id in {"1", "4"})
    clock = FakeClock(budget=60)
    outcome = SqsBatchSender(sqs, QUEUE, sleep=clock.sleep).send(messages(7))
    bodies = Counter(m["Body"][:6] for m in sqs.messages(QUEUE))
    assert bodies == Counter(f"{i:06d}" for i in range(7))
    assert sorted(m.context for m in outcome.sent) == list(range(7))
    assert outcome.failed == []
    assert (outcome.requests, outcome.errors) == (2, 2)


def test_sender_fault_is_not_retried() -> None:
    class SenderFaultSqs(FakeSqs):
        def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, object]]) -> dict[str, object]:
            self.calls += 1
            return {"Successful": [], "Failed": [{"Id": e["Id"], "SenderFault": True, "Code": "Bad"} for e in Entries]}

    sqs = SenderFaultSqs()
    outcome = SqsBatchSender(sqs, QUEUE, sleep=lambda _: None).send(messages(3))
    assert sqs.calls == 1
    assert [m.context for m in outcome.failed] == [0, 1, 2]


def test_connection_errors_are_retried_then_reported_failed() -> None:
    sqs = FakeSqs(raise_for=connection_error)
    sleeps: list[float] = []
    outcome = SqsBatchSender(sqs, QUEUE, max_attempts=3, sleep=sleeps.append).send(messages(2))
    assert sqs.calls == 3 and len(sleeps) == 2
    assert [m.context for m in outcome.failed] == [0, 1]
    assert outcome.sent == [] and outcome.errors == 3


def test_non_retryable_error_stops_at_once() -> None:
    sqs = FakeSqs(raise_for=lambda url: client_error("AccessDenied", 403, "SendMessageBatch"))
    outcome = SqsBatchSender(sqs, QUEUE, sleep=lambda _: None).send(messages(2))
    assert sqs.calls == 1
    assert len(outcome.failed) == 2
    assert "AccessDenied" in outcome.last_error


def test_no_retry_sleep_beyond_the_time_left() -> None:
    sqs = FakeSqs(raise_for=connection_error)
    clock = FakeClock(budget=1.0)  # less than the 1 s the sender keeps back
    outcome = SqsBatchSender(sqs, QUEUE, sleep=clock.sleep, time_left=clock.time_left).send(messages(1))
    assert sqs.calls == 1
    assert clock.sleeps == []
    assert len(outcome.failed) == 1

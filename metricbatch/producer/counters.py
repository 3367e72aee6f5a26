"""The producer's counters, by name (what ``stats()`` reports besides the buffer's gauges)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

# Every counter of stats(), by name: a typo in a counter's name is a type error (mypy), not a silent new key.
CounterName = Literal[
    "sent",  # metrics SQS accepted
    "fallback_published",  # metrics published directly with PutMetricData because SQS was unavailable
    "emf_published",  # metrics written as Embedded Metric Format lines (mode emf)
    "emf_documents",  # EMF lines written
    "captured",  # metrics kept for tests (mode memory)
    "discarded",  # metrics validated and discarded (mode off, chosen or configured)
    "dropped",  # metrics lost: the buffer was full, SQS and CloudWatch were both unavailable, or a setting is wrong
    "dropped_buffer_full",
    "dropped_undeliverable",
    "dropped_misconfigured",  # held while SQS refused the queue (a wrong setting) and still held at exit
    "dropped_at_exit",  # in a round still unanswered when the process ended on a signal (they may have arrived)
    "invalid",  # calls rejected with InvalidMetricError
    "send_errors",
    "sqs_requests",
    "messages_sent",
    "wire_entries",  # wire metrics (one per series, bucket and up to 150 values) in the messages SQS accepted
    "wire_bytes",  # bytes of the message bodies SQS accepted
    "put_metric_data_calls",
    "sender_rounds",  # times the sender took what was pending
    "queue_retries",  # times held metrics were offered again to a queue SQS had refused for a wrong setting
]
COUNTERS: Final[tuple[CounterName, ...]] = get_args(CounterName)
Counts = Mapping[CounterName, int]

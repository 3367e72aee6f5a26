"""From the buffer's histograms to wire-format v1: one wire metric per series, bucket and up to 150 values.

A bucket that holds one sample is written as ``"value"``; otherwise ``"values"`` with ``"counts"`` (left out when
every count is 1). The timestamp is the bucket's start (the minute, or the second for high resolution), which is
where CloudWatch stores the sample anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from metricbatch.aws.chunking import chunked
from metricbatch.aws.sqs import OutgoingMessage
from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.limits import MAX_VALUES_PER_DATUM
from metricbatch.producer.buffer import Histograms
from metricbatch.producer.series import BufferedSeries
from metricbatch.wire import ENVELOPE_BYTES, envelope_of


@dataclass(slots=True)
class WireEntry:
    """One wire metric: a series' bucket, or a part of it of at most 150 distinct values."""

    series: BufferedSeries
    bucket: float
    values: list[float]
    counts: list[int]
    samples: int

    def fragment(self) -> str:
        head, timestamp = self.series.head, int(self.bucket)
        if self.samples == 1:
            return f'{head},"value":{self.values[0]!r},"timestamp":{timestamp}}}'
        values = ",".join(map(float.__repr__, self.values))
        if self.samples == len(self.values):
            return f'{head},"values":[{values}],"timestamp":{timestamp}}}'
        counts = ",".join(map(int.__repr__, self.counts))
        return f'{head},"values":[{values}],"counts":[{counts}],"timestamp":{timestamp}}}'

    def datum(self) -> Datum:
        key = self.series.key
        return Datum(
            namespace=key.namespace,
            name=key.name,
            dimensions=key.dimensions,
            unit=key.unit,
            resolution=key.resolution,
            timestamp=self.bucket,
            values=self.values,
            counts=[float(c) for c in self.counts],
        )


def entries_of(histograms: Histograms) -> list[WireEntry]:
    """Every histogram as wire entries, spilling a bucket with more than 150 distinct values into several."""
    entries: list[WireEntry] = []
    for (series, bucket), histogram in histograms.items():
        if not histogram:  # opened for a metric the bound then dropped
            continue
        if len(histogram) <= MAX_VALUES_PER_DATUM:
            counts = list(histogram.values())
            entries.append(WireEntry(series, bucket, list(histogram), counts, sum(counts)))
            continue
        items = list(histogram.items())
        for start in range(0, len(items), MAX_VALUES_PER_DATUM):
            chunk = items[start : start + MAX_VALUES_PER_DATUM]
            counts = [c for _, c in chunk]
            entries.append(WireEntry(series, bucket, [v for v, _ in chunk], counts, sum(counts)))
    return entries


def samples_in(entries: Iterable[WireEntry]) -> int:
    return sum(entry.samples for entry in entries)


def pack_messages(entries: list[WireEntry], max_message_bytes: int) -> list[OutgoingMessage]:
    """Wire-format messages of at most ``max_message_bytes``; each message's context is the entries it carries."""
    # ASCII only (validated), so characters are bytes; +1 for the comma between fragments.
    sized = [(entry, entry.fragment()) for entry in entries]
    return [
        OutgoingMessage(body=envelope_of([fragment for _, fragment in run]), context=[entry for entry, _ in run])
        for run in chunked(sized, lambda pair: len(pair[1]) + 1, max_bytes=max_message_bytes - ENVELOPE_BYTES)
    ]

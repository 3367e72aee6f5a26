"""``emf`` mode: CloudWatch Embedded Metric Format lines on stdout, where Lambda and container log drivers already
ship them to CloudWatch Logs, which extracts the metrics (no API calls from the process at all).

One document (one line) per namespace, dimensions (with their roll-up sets) and time bucket, holding up to 100
metrics of that bucket:
``{"_aws": {"Timestamp": <ms>, "CloudWatchMetrics": [{"Namespace": ..., "Dimensions": [[keys]], "Metrics":
[{"Name": ..., "Unit": ..., "StorageResolution": 1}]}]}, "<key>": "<dimension value>", "<name>": [values]}``;
a metric sent with roll-ups lists each set in ``Dimensions`` (``[["Service", "Route"], ["Service"], []]``), so
CloudWatch records it under every set from one copy of the values.
The spec's limits hold (limits.py): 100 metrics per directive, 100 values per metric array, 30 dimension keys
(validated at the call), one event's size per document. EMF has no ``Counts``: a value that occurred n times in a
bucket is written n times, so sums, sample counts and percentiles come out exact, and a busy series writes one
array per 100 samples per bucket (log volume grows with samples, unlike the SQS path).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from metricbatch.exceptions import InvalidMetricError
from metricbatch.limits import (
    MAX_EMF_DIMENSION_KEY_LENGTH,
    MAX_EMF_DOCUMENT_BYTES,
    MAX_EMF_METRICS_PER_DIRECTIVE,
    MAX_EMF_VALUES_PER_METRIC,
)
from metricbatch.producer.counters import CounterName
from metricbatch.producer.destinations import Delivery
from metricbatch.producer.encoding import WireEntry
from metricbatch.validation import Series

logger = logging.getLogger(__name__)

METADATA_KEY = "_aws"
# Room for what every document carries besides its metrics: "_aws", Timestamp, the directive's keys, namespace.
_DOCUMENT_OVERHEAD_BYTES = 200


@dataclass(slots=True)
class _Document:
    """One EMF document being filled: the metrics of one namespace, dimension set and bucket."""

    namespace: str
    dimensions: tuple[tuple[str, str], ...]
    dimension_sets: tuple[tuple[str, ...], ...]  # roll-ups: the directive's sets (full set first); () = just one
    bucket: float
    size: int
    metrics: dict[str, tuple[str, int, list[float]]] = field(default_factory=dict)  # name -> (unit, resolution, values)
    parts: list[WireEntry] = field(default_factory=list)

    def line(self) -> str:
        definitions: list[dict[str, Any]] = []
        members: dict[str, Any] = dict(self.dimensions)
        for name, (unit, resolution, values) in self.metrics.items():
            definition: dict[str, Any] = {"Name": name, "Unit": unit}
            if resolution != 60:
                definition["StorageResolution"] = resolution
            definitions.append(definition)
            members[name] = values[0] if len(values) == 1 else values
        sets = [list(keys) for keys in self.dimension_sets] or [[key for key, _ in self.dimensions]]
        directive = {"Namespace": self.namespace, "Dimensions": sets, "Metrics": definitions}
        document = {METADATA_KEY: {"Timestamp": int(self.bucket * 1000), "CloudWatchMetrics": [directive]}, **members}
        return json.dumps(document, separators=(",", ":"))


def check_emf_series(series: Series) -> None:
    """Raise InvalidMetricError for what PutMetricData accepts and the EMF schema does not: a dimension key of
    251-255 characters (DimensionReference allows 250)."""
    for key, _ in series.dimensions:
        if len(key) > MAX_EMF_DIMENSION_KEY_LENGTH:
            raise InvalidMetricError(
                "emf.dimension_name.length",
                f"dimension name is {len(key)} characters, more than EMF's {MAX_EMF_DIMENSION_KEY_LENGTH} "
                f"(DimensionReference; PutMetricData allows 255): {key[:40]!r}...",
            )


def _chunks(entries: list[WireEntry]) -> Iterator[WireEntry]:
    """The samples of one series' bucket, one value per occurrence (EMF has no counts), at most 100 per part.

    ``entries`` are the wire parts of that bucket (split at 150 distinct values): chunked together, so 350 values
    make 4 arrays, not 5."""
    samples: list[float] = []
    first = entries[0]
    for entry in entries:
        for value, count in zip(entry.values, entry.counts, strict=True):
            for _ in range(count):
                samples.append(value)
                if len(samples) == MAX_EMF_VALUES_PER_METRIC:
                    yield WireEntry(first.series, first.bucket, samples, [1] * len(samples), len(samples))
                    samples = []
    if samples:
        yield WireEntry(first.series, first.bucket, samples, [1] * len(samples), len(samples))


def unfit_for_emf(entry: WireEntry) -> str:
    """Why EMF cannot carry this series ("" when it can): metric names and dimension keys share the root node."""
    key = entry.series.key
    names = {k for k, _ in key.dimensions}
    if key.name in names:
        return f"EMF cannot carry metric {key.name!r}: a dimension has the same name (both are root members)"
    if METADATA_KEY in names or key.name == METADATA_KEY:
        return f"EMF cannot carry metric {key.name!r}: {METADATA_KEY!r} is EMF's own member"
    return ""


@dataclass(slots=True)
class _Group:
    """The documents of one namespace, dimension set and bucket, and where each name may go next."""

    documents: list[_Document] = field(default_factory=list)
    next_for: dict[str, int] = field(default_factory=dict)  # earlier documents hold that name already, or are full

    def place(self, part: WireEntry) -> None:
        key = part.series.key
        size = len(json.dumps(key.name)) + len(json.dumps(part.values)) + len(key.unit) + 2 * len(key.name) + 64
        index = self.next_for.get(key.name, 0)
        while index < len(self.documents):
            document = self.documents[index]
            if (
                key.name not in document.metrics
                and len(document.metrics) < MAX_EMF_METRICS_PER_DIRECTIVE
                and document.size + size <= MAX_EMF_DOCUMENT_BYTES
            ):
                break
            index += 1
        else:
            dimensions = json.dumps(dict(key.dimensions))
            base = _DOCUMENT_OVERHEAD_BYTES + len(json.dumps(key.namespace)) + 2 * len(dimensions)
            sets = part.series.dimension_sets
            base += sum(len(json.dumps(keys)) for keys in sets)
            document = _Document(key.namespace, key.dimensions, sets, part.bucket, base)
            self.documents.append(document)
        document.metrics[key.name] = (key.unit, key.resolution, part.values)
        document.parts.append(part)
        document.size += size
        self.next_for[key.name] = index + 1


def documents_of(entries: list[WireEntry]) -> tuple[list[_Document], list[WireEntry], str]:
    """EMF documents for ``entries``, within the spec's limits; plus the entries EMF cannot carry and why."""
    groups: dict[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, ...], ...], float], _Group] = {}
    unfit: list[WireEntry] = []
    reason = ""
    # a series' bucket may come as several wire parts
    buckets: dict[tuple[Series, tuple[tuple[str, ...], ...], float], list[WireEntry]] = {}
    for entry in entries:
        why = unfit_for_emf(entry)
        if why:
            unfit.append(entry)
            reason = why
            continue
        series = entry.series
        buckets.setdefault((series.key, series.dimension_sets, entry.bucket), []).append(entry)
    for (key, dimension_sets, bucket), parts in buckets.items():
        group = groups.setdefault((key.namespace, key.dimensions, dimension_sets, bucket), _Group())
        for part in _chunks(parts):
            group.place(part)
    return [document for group in groups.values() for document in group.documents], unfit, reason


class EmfDestination:
    """Writes EMF documents, one per line, to ``stream`` (default: ``sys.stdout`` as it is at each write)."""

    delivered_counter: CounterName = "emf_published"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # one document per write, never interleaved with another producer's

    def prepare(self) -> None:
        """Nothing to make ahead: no clients."""

    def deliver(self, entries: list[WireEntry]) -> Delivery:
        documents, undelivered, error = documents_of(entries)
        delivered = written = 0
        stream = self._stream or sys.stdout
        with self._lock:
            for index, document in enumerate(documents):
                try:
                    stream.write(document.line() + "\n")
                except (OSError, ValueError) as exc:  # a closed or broken stdout
                    error = f"cannot write EMF to {getattr(stream, 'name', 'the stream')}: {exc}"
                    undelivered.extend(part for unwritten in documents[index:] for part in unwritten.parts)
                    break
                written += 1
                delivered += sum(part.samples for part in document.parts)
            try:
                stream.flush()
            except (OSError, ValueError) as exc:
                logger.debug("cannot flush the EMF stream: %s", exc)
        if error:
            logger.debug("EMF: %s", error)
        return Delivery(delivered=delivered, undelivered=undelivered, error=error, counts={"emf_documents": written})

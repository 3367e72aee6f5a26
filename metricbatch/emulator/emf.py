"""EMF extraction for local runs: what CloudWatch Logs does with the batcher's EMF log lines in AWS."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)


def emf_to_put_metric_data(document: dict[str, Any]) -> list[dict[str, Any]]:
    """PutMetricData parameters for the metrics one EMF document declares."""
    meta = document.get("_aws", {})
    timestamp = float(meta.get("Timestamp", 0)) / 1000.0
    requests = []
    for directive in meta.get("CloudWatchMetrics", []):
        dimension_sets = directive.get("Dimensions") or [[]]
        data = []
        for dimension_set in dimension_sets:
            dimensions = [{"Name": d, "Value": str(document[d])} for d in dimension_set if d in document]
            for metric in directive.get("Metrics", []):
                value = document.get(metric["Name"])
                values = value if isinstance(value, list) else [value]
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Values": [float(v) for v in values if v is not None],
                    "Unit": metric.get("Unit", "None"),
                }
                if "StorageResolution" in metric:
                    datum["StorageResolution"] = int(metric["StorageResolution"])
                if timestamp:
                    datum["Timestamp"] = int(timestamp)
                data.append(datum)
        if data:
            requests.append({"Namespace": directive["Namespace"], "MetricData": data})
    return requests


class EmfExtractor:
    """Publishes EMF documents to a CloudWatch client marked as EMF extraction (not counted as billed calls)."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self.documents = 0

    def __call__(self, document: dict[str, Any]) -> None:
        self.documents += 1
        for params in emf_to_put_metric_data(document):
            self._cloudwatch.put_metric_data(**params)


def emf_documents(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The EMF documents among a function's stdout lines (JSON objects with ``_aws.CloudWatchMetrics``)."""
    for line in lines:
        text = line.strip()
        if not (text.startswith("{") and '"_aws"' in text):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            logger.warning("an EMF-looking line is not JSON: %.80s", text)
            continue
        meta = document.get("_aws") if isinstance(document, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("CloudWatchMetrics"), list):
            yield document


def publish_emf_lines(cloudwatch: Any, lines: Iterable[str]) -> int:
    """Put the metrics of every EMF document among ``lines`` into ``cloudwatch``, as CloudWatch Logs extracts
    them from a Lambda function's log stream; the number of documents. Any source of a function's stdout works:
    the in-process handler's captured output or a local Lambda runner's."""
    extractor = EmfExtractor(cloudwatch)
    for document in emf_documents(lines):
        extractor(document)
    return extractor.documents

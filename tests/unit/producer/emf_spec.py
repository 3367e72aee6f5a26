"""The CloudWatch Embedded Metric Format's required structure, written from the specification (CloudWatch User
Guide, "Specification: Embedded metric format", and its JSON schema), independently of metricbatch's writer.

``violations(line)`` lists every rule a log line breaks; an empty list means CloudWatch Logs would extract it.
It checks the line against the official JSON schema too (vendored in tests/vectors/emf/, see SOURCE.md there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "vectors" / "emf" / "schema.json"
_SCHEMA = Draft7Validator(json.loads(SCHEMA_PATH.read_text()))

# Restated from the specification on purpose (not imported from metricbatch.limits).
MAX_METRIC_DEFINITIONS = 100  # MetricDirective.Metrics "MUST NOT contain more than 100 MetricDefinition objects"
MAX_VALUES = 100  # "Numeric array metric targets MUST NOT have more than 100 members"
MAX_DIMENSION_KEYS = 30  # DimensionSet
MAX_EVENT_BYTES = 256 * 1024  # "the same limits as standard CloudWatch Logs events" (the older, stricter figure)
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip
DIRECTIVE_MEMBERS = {"Namespace", "Dimensions", "Metrics"}
DEFINITION_MEMBERS = {"Name", "Unit", "StorageResolution"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, max_length: int = 255) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= max_length


def schema_errors(document: Any) -> list[str]:
    """What the official EMF JSON schema finds wrong with one parsed document."""
    return [f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in _SCHEMA.iter_errors(document)]


def violations(line: str) -> list[str]:
    """Every rule of the specification (and of its JSON schema) this log line breaks."""
    if len(line.encode()) > MAX_EVENT_BYTES:
        return [f"document is {len(line.encode())} bytes, more than a log event's {MAX_EVENT_BYTES}"]

    def no_constants(constant: str) -> Any:
        raise ValueError(f"not JSON (RFC 8259): {constant}")

    try:
        root = json.loads(line, parse_constant=no_constants)
    except ValueError as exc:
        return [f"the line is not one JSON value: {exc}"]
    if not isinstance(root, dict):
        return ["the root node must be a JSON object"]
    meta = root.get("_aws")
    if not isinstance(meta, dict):
        return ["_aws (the metadata object) is required and must be an object"]
    found: list[str] = []
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 10**12:
        found.append(f"_aws.Timestamp must be an integer of milliseconds since the epoch, got {timestamp!r}")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*found, "_aws.CloudWatchMetrics must be a non-empty array of MetricDirective objects"]
    for d, directive in enumerate(directives):
        found.extend(_directive_violations(root, d, directive))
    return found + schema_errors(root)


def _directive_violations(root: dict[str, Any], d: int, directive: Any) -> list[str]:
    where = f"CloudWatchMetrics[{d}]"
    if not isinstance(directive, dict):
        return [f"{where} must be an object"]
    found = [f"{where} has a member the spec does not define: {k}" for k in directive if k not in DIRECTIVE_MEMBERS]
    if not _text(directive.get("Namespace")):
        found.append(f"{where}.Namespace must be a string of 1 to 255 characters")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list) or not dimension_sets:
        found.append(f"{where}.Dimensions must be an array of at least one DimensionSet")
        dimension_sets = []
    for s, keys in enumerate(dimension_sets):
        if not isinstance(keys, list) or len(keys) > MAX_DIMENSION_KEYS:
            found.append(f"{where}.Dimensions[{s}] must be an array of at most {MAX_DIMENSION_KEYS} keys")
            continue
        for key in keys:
            if not _text(key):
                found.append(f"{where}.Dimensions[{s}] holds {key!r}, not a string of 1 to 255 characters")
            elif not isinstance(root.get(key), str):
                found.append(f"dimension target {key!r} must be a root member with a string value")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or len(metrics) > MAX_METRIC_DEFINITIONS:
        return [*found, f"{where}.Metrics must be an array of at most {MAX_METRIC_DEFINITIONS} MetricDefinitions"]
    names = [metric.get("Name") for metric in metrics if isinstance(metric, dict)]
    if len(names) != len(set(map(str, names))):
        found.append(f"{where}.Metrics names a target twice: {names}")
    for m, metric in enumerate(metrics):
        found.extend(_definition_violations(root, f"{where}.Metrics[{m}]", metric))
    return found


def _definition_violations(root: dict[str, Any], where: str, metric: Any) -> list[str]:
    if not isinstance(metric, dict):
        return [f"{where} must be an object"]
    found = [f"{where} has a member the spec does not define: {k}" for k in metric if k not in DEFINITION_MEMBERS]
    name = metric.get("Name")
    if not isinstance(name, str) or not _text(name):
        return [*found, f"{where}.Name must be a string of 1 to 255 characters"]
    if "Unit" in metric and metric["Unit"] not in UNITS:
        found.append(f"{where}.Unit {metric['Unit']!r} is not a CloudWatch unit")
    if "StorageResolution" in metric and metric["StorageResolution"] not in (1, 60):
        found.append(f"{where}.StorageResolution must be 1 or 60, got {metric['StorageResolution']!r}")
    target = root.get(name)
    if isinstance(target, list):
        if not target or len(target) > MAX_VALUES or not all(_is_number(v) for v in target):
            found.append(f"metric target {name!r} must be an array of 1 to {MAX_VALUES} numbers")
    elif not _is_number(target):
        found.append(f"metric target {name!r} must be a root member holding a number or an array of numbers")
    return found


def samples(line: str) -> list[tuple[str, str, dict[str, str], float, int, str, int]]:
    """(namespace, name, dimensions, value, timestamp ms, unit, resolution) once per value a document holds."""
    root = json.loads(line)
    meta = root["_aws"]
    out = []
    for directive in meta["CloudWatchMetrics"]:
        for keys in directive["Dimensions"]:
            dimensions = {key: root[key] for key in keys}
            for metric in directive["Metrics"]:
                target = root[metric["Name"]]
                for value in target if isinstance(target, list) else [target]:
                    out.append(
                        (
                            directive["Namespace"],
                            metric["Name"],
                            dimensions,
                            float(value),
                            meta["Timestamp"],
                            metric.get("Unit", "None"),
                            metric.get("StorageResolution", 60),
                        )
                    )
    return out

"""Functional tier: the real producer, handler and poller against moto's server over HTTP, behind the strict gateway.

One LocalPipeline per module (options from the module's ``PIPELINE_OPTIONS``); every test writes to its own
namespaces and starts with no faults, an empty ledger, an empty queue and an empty DLQ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functional_support import discard_all, take_dlq
from jsonschema import Draft7Validator

from metricbatch.emulator.embedded import EmbeddedAws
from metricbatch.emulator.emf import EmfExtractor
from metricbatch.emulator.local_pipeline import LocalPipeline

# The official EMF JSON schema (tests/vectors/emf/SOURCE.md): every document extracted here must pass it.
EMF_SCHEMA = Draft7Validator(json.loads((Path(__file__).parents[1] / "vectors" / "emf" / "schema.json").read_text()))
_invalid_emf: list[str] = []
_extract = EmfExtractor.__call__


def _validated_extract(self: EmfExtractor, document: dict[str, Any]) -> None:
    errors = EMF_SCHEMA.iter_errors(document)
    _invalid_emf.extend(f"{error.message[:200]} in {json.dumps(document)[:300]}" for error in errors)
    _extract(self, document)


@pytest.fixture(autouse=True)
def emf_documents_follow_the_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every EMF document a test writes (the producer's emf mode, the batcher's self-metrics) is schema-valid."""
    monkeypatch.setattr(EmfExtractor, "__call__", _validated_extract)
    _invalid_emf.clear()
    yield
    assert _invalid_emf == [], f"{len(_invalid_emf)} EMF documents fail the official schema: {_invalid_emf[:3]}"


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest) -> Iterator[LocalPipeline]:
    options: dict[str, Any] = getattr(request.module, "PIPELINE_OPTIONS", {})
    # moto's backends are process-wide: every embedded AWS of this process shares queues and metrics. Start from
    # and leave behind an empty one, so no module reads another's series (self-metrics especially).
    with EmbeddedAws() as aws:
        aws.reset()
    with LocalPipeline(queue_name=f"functional-{uuid.uuid4().hex[:8]}", **options) as started:
        yield started
        started.aws.reset()


@pytest.fixture
def clean_pipeline(pipeline: LocalPipeline) -> Iterator[LocalPipeline]:
    pipeline.aws.faults.clear()
    discard_all(pipeline)  # PurgeQueue is allowed once a minute only
    take_dlq(pipeline)
    pipeline.aws.ledger.reset()
    yield pipeline
    pipeline.aws.faults.clear()

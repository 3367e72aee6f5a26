"""Functional tier: the real producer, handler and poller against moto's server over HTTP, behind the strict gateway.

One LocalPipeline per module (options from the module's ``PIPELINE_OPTIONS``); every test writes to its own
namespaces and starts with no faults, an empty ledger, an empty queue and an empty DLQ.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from functional_support import discard_all, take_dlq

from metricbatch.emulator.embedded import EmbeddedAws
from metricbatch.emulator.stack import LocalPipeline


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

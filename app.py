"""CDK entry point: synthesizes the metricbatch stack of one environment.

Usage::

    npx cdk synth  -c env=dev                        # dev is the default
    npx cdk deploy -c env=prod
    npx cdk deploy -c env=staging -c max_concurrency=10 -c alarm_email=oncall@example.com
    npx cdk deploy -c env=prod -c overrides='{"allowed_namespaces": ["Shop/", "Payments/"], "log_retention_days": 180}'

Context keys:

- ``env``: ``dev``, ``staging`` or ``prod``; picks ``metricbatch.deploy.settings_for(env)``.
- ``overrides``: a JSON object of ``PipelineSettings`` fields, applied on top of the environment's settings.
- any ``PipelineSettings`` field by name (``-c max_concurrency=10``): applied last, so it beats ``overrides``.
- ``shards`` (``-c shards=16``), the scale setting for big fleets: N queues, the fleet batching settings, a
  minute-aligned producer round (``metricbatch plan`` recommends N; README, "Deploy: big fleets").
  Strings are converted to the field's type; tuples take a comma-separated list (``-c allowed_namespaces=Shop/,Pay/``);
  ``tags`` takes a JSON object.

Account and region come from ``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION`` (set by the CDK CLI from your
credentials); without them the stack is environment-agnostic, so ``cdk synth`` needs no credentials.
Every synth runs the cdk-nag AwsSolutions checks; an unacknowledged finding fails it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import aws_cdk as cdk

from infra.nag import add_nag_checks
from infra.stack import MetricBatchingStack
from metricbatch.deploy import PipelineSettings, settings_for
from metricbatch.exceptions import ConfigurationError

DEFAULT_ENV = "dev"


def settings_from_context(app: cdk.App) -> PipelineSettings:
    """The chosen environment's settings with the overrides given as CDK context."""
    env = app.node.try_get_context("env") or DEFAULT_ENV
    settings = settings_for(str(env))
    overrides: dict[str, Any] = {}
    raw_overrides = app.node.try_get_context("overrides")
    if raw_overrides:
        parsed = json.loads(raw_overrides) if isinstance(raw_overrides, str) else raw_overrides
        if not isinstance(parsed, dict):
            raise ConfigurationError(f"context 'overrides' must be a JSON object, got {raw_overrides!r}")
        overrides.update(parsed)
    for field in dataclasses.fields(PipelineSettings):
        value = app.node.try_get_context(field.name)
        if value is None or field.name == "name":
            continue
        if field.name == "tags" and isinstance(value, str):
            value = json.loads(value)
        overrides[field.name] = value
    return settings.with_overrides(overrides) if overrides else settings


def main() -> None:
    app = cdk.App()
    settings = settings_from_context(app)
    MetricBatchingStack(
        app,
        settings=settings,
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    add_nag_checks(app)
    app.synth()


if __name__ == "__main__":
    main()

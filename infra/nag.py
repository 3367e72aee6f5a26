"""cdk-nag wiring: every synth runs the AwsSolutions pack, and findings are acknowledged next to their resource."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_nag_checks(app: cdk.App) -> None:
    """Run the AwsSolutions rules on every synth; any unacknowledged finding fails synthesis."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, *, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (e.g. ``AwsSolutions-IAM5[Resource::*]``) on a scope and its children."""
    if not reason.strip():
        raise ValueError(f"acknowledging {rule_id} needs a reason")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))

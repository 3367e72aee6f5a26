"""Static checks: every synth runs cdk-nag's AwsSolutions pack; cdk-nag, checkov and cfn-lint findings that do not
fit are accepted next to their resource, each with its reason."""

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


def skip_checkov(resource: IConstruct, *, check_id: str, reason: str) -> None:
    """Record a checkov finding (e.g. ``CKV_AWS_117``) as accepted, in the resource's CloudFormation Metadata."""
    if not reason.strip():
        raise ValueError(f"skipping {check_id} needs a reason")
    cfn = _cfn_resource(resource)
    metadata = cfn.get_metadata("checkov") or {}
    skips = [*metadata.get("skip", []), {"id": check_id, "comment": reason}]
    cfn.add_metadata("checkov", {**metadata, "skip": skips})


def ignore_cfn_lint(resource: IConstruct, *, rule_id: str) -> None:
    """Have cfn-lint ignore one rule (e.g. ``W3005``) on this resource; say why at the call site."""
    cfn = _cfn_resource(resource)
    metadata = cfn.get_metadata("cfn-lint") or {}
    config = metadata.get("config", {})
    ignored = [*config.get("ignore_checks", []), rule_id]
    cfn.add_metadata("cfn-lint", {**metadata, "config": {**config, "ignore_checks": ignored}})


def _cfn_resource(resource: IConstruct) -> cdk.CfnResource:
    child = resource if isinstance(resource, cdk.CfnResource) else resource.node.default_child
    if not isinstance(child, cdk.CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to annotate")
    return child

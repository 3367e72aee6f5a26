"""The pipeline's customer managed KMS key, chosen by ``PipelineSettings.encryption_key``."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from metricbatch.deploy import ENCRYPTION_KMS, ENCRYPTION_SQS_MANAGED, PipelineSettings

# CloudWatch Logs' use of a key (CloudWatch Logs User Guide, "Encrypt log data using AWS KMS": key policy).
_LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


def pipeline_key(scope: Construct, *, settings: PipelineSettings, removal: cdk.RemovalPolicy) -> kms.IKey | None:
    """None for ``sqs-managed``; a new rotated key for ``kms``; the existing key for an ARN.

    A key the stack creates lets this region's CloudWatch Logs use it for the account's log groups. An existing key
    is used as it is: its key policy must allow IAM policies to grant it (the default key policy does) and allow
    CloudWatch Logs as below (README, Deploy).
    """
    if settings.encryption_key == ENCRYPTION_SQS_MANAGED:
        return None
    if settings.encryption_key != ENCRYPTION_KMS:
        return kms.Key.from_key_arn(scope, "EncryptionKey", settings.encryption_key)
    key = kms.Key(
        scope,
        "EncryptionKey",
        description=f"metricbatch queues, DLQ and batcher logs ({settings.name})",
        enable_key_rotation=True,
        removal_policy=removal,
    )
    stack = cdk.Stack.of(scope)
    log_groups = stack.format_arn(
        service="logs", resource="log-group", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=list(_LOGS_KEY_ACTIONS),
            resources=["*"],  # in a key policy, "*" is this key
            # Only on behalf of this account's log groups in this region (the ARN names no log group: the group's
            # generated name would make the key and the group depend on each other).
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        )
    )
    return key

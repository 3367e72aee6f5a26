"""The pipeline construct: the metrics queue, its dead-letter queue and the batcher function that drains it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.artifact import BATCHER_PACKAGE, REPO_ROOT, assemble
from infra.encryption import pipeline_key
from infra.nag import acknowledge, ignore_cfn_lint, skip_checkov
from metricbatch import env as env_names
from metricbatch.deploy import PipelineSettings
from metricbatch.env import SERVICE_NAME
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import RESERVED_NAMESPACE_PREFIX

BATCHER_HANDLER: Final = "lambdas/batcher/handler.handler"
# What sending to a KMS-encrypted queue takes (SQS Developer Guide, "Amazon SQS key management": producers).
KMS_SEND_ACTIONS: Final = ("kms:GenerateDataKey", "kms:Decrypt")
# checkov's Lambda findings that do not fit this function, each with the reason (CFN Metadata, shown by checkov).
_FUNCTION_CHECKOV_SKIPS: Final = {
    "CKV_AWS_116": "a function DLQ catches failed asynchronous invocations; the SQS event source invokes "
    "synchronously and the queue's redrive policy is the dead-letter path",
    "CKV_AWS_117": "the function calls only SQS and CloudWatch public endpoints; a VPC would add NAT or endpoints, "
    "not protection",
    "CKV_AWS_115": "concurrency is capped by the event source's MaximumConcurrency (max_concurrency); reserving it "
    "would take it from the account's pool for nothing",
    "CKV_AWS_173": "the variables are queue URLs, names and log settings, no secrets; Lambda encrypts them at rest",
}

# CloudWatch Logs accepts only these retention periods; the CDK enum names them.
_LOG_RETENTION: Final[Mapping[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def service_name(settings: PipelineSettings) -> str:
    """The Powertools service name, also the ``service`` dimension of the self-metrics: ``metricbatch-<env>``."""
    return f"{SERVICE_NAME}-{settings.name}"


def removal_policy(settings: PipelineSettings) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if settings.retain_on_delete else cdk.RemovalPolicy.DESTROY


def log_retention(days: int) -> logs.RetentionDays:
    try:
        return _LOG_RETENTION[days]
    except KeyError:
        raise ConfigurationError(
            f"log_retention_days {days} is not a CloudWatch Logs retention; choose one of {sorted(_LOG_RETENTION)}"
        ) from None


@jsii.implements(cdk.ILocalBundling)
class BatcherSourceBundler:
    """Writes the self-contained deployment package (see ``infra.artifact``) into the asset during synth.

    Runs in-process, so no Docker is needed; the dependency tree is built beforehand by ``make lambda-deps``.
    """

    def __init__(self, *, source_root: Path) -> None:
        self._source_root = source_root

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        assemble(Path(output_dir), source_root=self._source_root)
        return True


def batcher_code(*, source_root: Path = REPO_ROOT) -> lambda_.Code:
    """The batcher's deployment package: its pinned dependencies, ``lambdas/batcher/`` and the batcher's parts."""
    return lambda_.Code.from_asset(
        str(source_root / BATCHER_PACKAGE),  # a source directory CDK requires; the bundler decides what goes in
        # Keyed by what is deployed, dependencies included: a new pin is a new asset even if no source changed.
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. Named for the record only.
            image=lambda_.Runtime.PYTHON_3_13.bundling_image,
            # jsii calls try_bundle(output_dir, options) with the struct positionally, unlike the generated
            # protocol's keyword form; the cast records that the class implements the interface at run time.
            local=cast(cdk.ILocalBundling, BatcherSourceBundler(source_root=source_root)),
        ),
    )


class MetricPipeline(Construct):
    """Queue → batcher Lambda → CloudWatch, with a dead-letter queue and least-privilege permissions.

    Attributes:
        queue: where producers send wire-format messages; the batcher also re-queues unsent datums here.
        queues: every shard's queue in shard order (``settings.shards``; ``queues[0]`` is ``queue``).
        dead_letter_queue: poison messages after ``max_receive_count`` receives, and data the batcher set aside.
        function: the batcher Lambda function.
        log_group: the batcher's log group (its EMF self-metrics are extracted from it).
        producer_policy: a managed policy that lets a producer send to the shard queues and nothing else.
        encryption_key: the customer managed KMS key of queues, DLQ and log group (``settings.encryption_key``
            ``kms`` or a key ARN), or None for SQS-owned keys.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(settings)
        # None: SQS-owned keys (SSE-SQS) for the queues and CloudWatch Logs' own encryption for the log group.
        self.encryption_key = pipeline_key(self, settings=settings, removal=removal)
        encryption: dict[str, Any] = (
            {"encryption": sqs.QueueEncryption.SQS_MANAGED}
            if self.encryption_key is None
            else {"encryption": sqs.QueueEncryption.KMS, "encryption_master_key": self.encryption_key}
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            **encryption,
            enforce_ssl=True,
            retention_period=cdk.Duration.seconds(settings.dlq_retention_seconds),
            removal_policy=removal,
        )
        # One queue per shard (settings.shards); shard 0 keeps the single queue's id, so resharding never replaces it.
        self.queues: tuple[sqs.Queue, ...] = tuple(
            sqs.Queue(
                self,
                queue_id,
                **encryption,
                enforce_ssl=True,
                visibility_timeout=cdk.Duration.seconds(settings.visibility_timeout_seconds),
                retention_period=cdk.Duration.seconds(settings.queue_retention_seconds),
                dead_letter_queue=sqs.DeadLetterQueue(
                    max_receive_count=settings.max_receive_count, queue=self.dead_letter_queue
                ),
                removal_policy=removal,
            )
            for queue_id in settings.shard_ids()
        )
        self.queue = self.queues[0]

        self.log_group = logs.LogGroup(
            self,
            "BatcherLogs",
            retention=log_retention(settings.log_retention_days),
            encryption_key=self.encryption_key,
            removal_policy=removal,
        )
        if self.encryption_key is None:
            for queue in (*self.queues, self.dead_letter_queue):
                skip_checkov(
                    queue,
                    check_id="CKV_AWS_27",
                    reason="encryption_key=sqs-managed: SSE-SQS with SQS-owned keys; set kms or a key ARN for a CMK",
                )
            skip_checkov(
                self.log_group,
                check_id="CKV_AWS_158",
                reason="encryption_key=sqs-managed: CloudWatch Logs' own encryption; set kms or a key ARN for a CMK",
            )
        # Own role instead of AWSLambdaBasicExecutionRole: logs:* on every log group is more than the batcher needs.
        role = iam.Role(
            self,
            "BatcherRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"metricbatch batcher ({settings.name}): drain the queue, publish custom metrics",
        )
        environment = {
            env_names.QUEUE_URL: self.queue.queue_url,
            env_names.DLQ_URL: self.dead_letter_queue.queue_url,
            env_names.POWERTOOLS_SERVICE_NAME: service_name(settings),
            env_names.POWERTOOLS_METRICS_NAMESPACE: settings.self_metrics_namespace,
            env_names.POWERTOOLS_LOG_LEVEL: "INFO",
        }
        if settings.allowed_namespaces:
            environment[env_names.ALLOWED_NAMESPACES] = ",".join(settings.allowed_namespaces)

        self.function = lambda_.Function(
            self,
            "Batcher",
            description=f"metricbatch batcher ({settings.name}): SQS wire-format messages to PutMetricData",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=BATCHER_HANDLER,
            code=code or batcher_code(),
            role=role,
            timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
            memory_size=settings.function_memory_mb,
            environment=environment,
            log_group=self.log_group,
            # Re-queued messages carry an attempt count capped well below Lambda's loop threshold; a real loop
            # (a bug) should still be stopped.
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        # One event source mapping per shard: each invocation sees one shard's series only.
        for queue in self.queues:
            self.function.add_event_source(
                event_sources.SqsEventSource(
                    queue,
                    batch_size=settings.batch_size,
                    max_batching_window=cdk.Duration.seconds(settings.batching_window_seconds),
                    report_batch_item_failures=True,
                    max_concurrency=settings.max_concurrency,
                )
            )
        self.log_group.grant_write(role)
        self.queue.grant(role, "sqs:SendMessage")  # re-queue unsent datums (to shard 0 when sharded)
        self.dead_letter_queue.grant(role, "sqs:SendMessage")  # set aside invalid data with the reason
        # Receiving needs kms:Decrypt, which the event source grants with the queue; re-queueing and setting aside
        # send, which needs KMS_SEND_ACTIONS.
        if self.encryption_key is not None:
            self.encryption_key.grant(role, *KMS_SEND_ACTIONS)
        role.add_to_principal_policy(_put_metric_data_statement(settings.allowed_namespaces))
        acknowledge(
            role,
            rule_id="AwsSolutions-IAM5[Resource::*]",
            reason="cloudwatch:PutMetricData has no resource-level permissions (Resource must be *); the statement "
            "is narrowed by a cloudwatch:namespace condition instead.",
        )
        acknowledge(
            self.function,
            rule_id="AwsSolutions-L1",
            reason="Python 3.13 is pinned on purpose: the bundled dependencies are installed for it "
            "(infra.artifact.LAMBDA_PYTHON_VERSION) and the package is tested on it. Move runtime and bundle together.",
        )
        for check_id, reason in _FUNCTION_CHECKOV_SKIPS.items():
            skip_checkov(self.function, check_id=check_id, reason=reason)
        # CDK's function depends on its role explicitly and through Fn::GetAtt; the duplicate is harmless.
        ignore_cfn_lint(self.function, rule_id="W3005")

        self.producer_policy = iam.ManagedPolicy(
            self,
            "ProducerPolicy",
            description=f"Send metrics to the metricbatch queue ({settings.name}); attach to producer roles",
        )
        for queue in self.queues:
            queue.grant(self.producer_policy, "sqs:SendMessage")
        if self.encryption_key is not None:
            self.encryption_key.grant(self.producer_policy, *KMS_SEND_ACTIONS)


def _put_metric_data_statement(allowed_namespaces: tuple[str, ...]) -> iam.PolicyStatement:
    if allowed_namespaces:
        condition = {"StringLike": {"cloudwatch:namespace": [f"{prefix}*" for prefix in allowed_namespaces]}}
    else:
        condition = {"StringNotLike": {"cloudwatch:namespace": [f"{RESERVED_NAMESPACE_PREFIX}*"]}}
    return iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"], conditions=condition)

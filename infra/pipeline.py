"""The pipeline construct: the metrics queue, its dead-letter queue and the batcher function that drains it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Final, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from metricbatch.deploy import PipelineSettings
from metricbatch.env import SERVICE_NAME
from metricbatch.exceptions import ConfigurationError
from metricbatch.limits import RESERVED_NAMESPACE_PREFIX

# Powertools for AWS Lambda (Python) v3, public layer for Python 3.13 on arm64. Bump together with
# aws-lambda-powertools in requirements.txt; the versions are listed at
# https://docs.powertools.aws.dev/lambda/python/latest/#lambda-layer
POWERTOOLS_LAYER_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_NAME: Final = "AWSLambdaPowertoolsPythonV3-python313-arm64"
POWERTOOLS_LAYER_VERSION: Final = 27

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
# What the batcher needs at run time, relative to the repository root; boto3 is in the runtime, Powertools in a layer.
BATCHER_PACKAGE: Final = "metricbatch"
# The parts of the package the batcher runs: the shared core and the batcher side. The producer, the CLI, the
# emulator and the worker stay out of the asset (and off the handler's import path).
BATCHER_PACKAGE_PARTS: Final = (
    "__init__.py",
    "exceptions.py",
    "limits.py",
    "env.py",
    "wire.py",
    "validation.py",
    "aws",
    "cloudwatch",
    "batcher",
)
BATCHER_HANDLER_FILE: Final = "lambdas/batcher/handler.py"
BATCHER_HANDLER: Final = "lambdas/batcher/handler.handler"
_BUNDLE_IGNORE: Final = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")

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
    """Copies the handler and the batcher's parts of ``metricbatch`` into the asset, keeping their repository layout.

    Runs in-process during synth, so no Docker is needed; everything else in the repository stays out.
    """

    def __init__(self, *, source_root: Path) -> None:
        self._source_root = source_root

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        handler = self._source_root / BATCHER_HANDLER_FILE
        package = self._source_root / BATCHER_PACKAGE
        if not handler.is_file():
            raise ConfigurationError(f"batcher handler {handler} is missing; nothing to deploy")
        if not (package / "__init__.py").is_file():
            raise ConfigurationError(f"package {package} is missing")
        out = Path(output_dir)
        for part in BATCHER_PACKAGE_PARTS:
            source, target = package / part, out / BATCHER_PACKAGE / part
            if source.is_dir():
                shutil.copytree(source, target, ignore=_BUNDLE_IGNORE, dirs_exist_ok=True)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            else:
                raise ConfigurationError(f"batcher source {source} is missing")
        handler_dir = handler.parent.relative_to(self._source_root)
        shutil.copytree(handler.parent, out / handler_dir, ignore=_BUNDLE_IGNORE, dirs_exist_ok=True)
        for parent in handler_dir.parents:  # keep lambdas/ a regular package if it is one in the repository
            init = self._source_root / parent / "__init__.py"
            if parent != Path(".") and init.is_file():
                shutil.copy2(init, out / parent / "__init__.py")
        return True


def batcher_code(*, source_root: Path = REPO_ROOT) -> lambda_.Code:
    """The batcher's deployment package: ``lambdas/batcher/`` and ``metricbatch/``, bundled locally."""
    return lambda_.Code.from_asset(
        str(source_root / BATCHER_PACKAGE),  # only keys the asset; the bundler decides what goes in
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
        dead_letter_queue: poison messages after ``max_receive_count`` receives, and data the batcher set aside.
        function: the batcher Lambda function.
        log_group: the batcher's log group (its EMF self-metrics are extracted from it).
        producer_policy: a managed policy that lets a producer send to ``queue`` and nothing else.
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
        region = cdk.Stack.of(self).region

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.seconds(settings.dlq_retention_seconds),
            removal_policy=removal,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(settings.visibility_timeout_seconds),
            retention_period=cdk.Duration.seconds(settings.queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.max_receive_count, queue=self.dead_letter_queue
            ),
            removal_policy=removal,
        )

        self.log_group = logs.LogGroup(
            self,
            "BatcherLogs",
            retention=log_retention(settings.log_retention_days),
            removal_policy=removal,
        )
        # Own role instead of AWSLambdaBasicExecutionRole: logs:* on every log group is more than the batcher needs.
        role = iam.Role(
            self,
            "BatcherRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"metricbatch batcher ({settings.name}): drain the queue, publish custom metrics",
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            f"arn:aws:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
            f"{POWERTOOLS_LAYER_NAME}:{POWERTOOLS_LAYER_VERSION}",
        )
        environment = {
            "METRICBATCH_QUEUE_URL": self.queue.queue_url,
            "METRICBATCH_DLQ_URL": self.dead_letter_queue.queue_url,
            "POWERTOOLS_SERVICE_NAME": service_name(settings),
            "POWERTOOLS_METRICS_NAMESPACE": settings.self_metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if settings.allowed_namespaces:
            environment["METRICBATCH_ALLOWED_NAMESPACES"] = ",".join(settings.allowed_namespaces)

        self.function = lambda_.Function(
            self,
            "Batcher",
            description=f"metricbatch batcher ({settings.name}): SQS wire-format messages to PutMetricData",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=BATCHER_HANDLER,
            code=code or batcher_code(),
            layers=[powertools],
            role=role,
            timeout=cdk.Duration.seconds(settings.function_timeout_seconds),
            memory_size=settings.function_memory_mb,
            environment=environment,
            log_group=self.log_group,
            # Re-queued messages carry an attempt count capped well below Lambda's loop threshold; a real loop
            # (a bug) should still be stopped.
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=settings.batch_size,
                max_batching_window=cdk.Duration.seconds(settings.batching_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=settings.max_concurrency,
            )
        )
        self.log_group.grant_write(role)
        self.queue.grant(role, "sqs:SendMessage")  # re-queue unsent datums
        self.dead_letter_queue.grant(role, "sqs:SendMessage")  # set aside invalid data with the reason
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
            reason="Python 3.13 is pinned on purpose: the Powertools public layer used here is built for python313, "
            "and the package is tested on it. Move runtime and layer together.",
        )

        self.producer_policy = iam.ManagedPolicy(
            self,
            "ProducerPolicy",
            description=f"Send metrics to the metricbatch queue ({settings.name}); attach to producer roles",
        )
        self.queue.grant(self.producer_policy, "sqs:SendMessage")


def _put_metric_data_statement(allowed_namespaces: tuple[str, ...]) -> iam.PolicyStatement:
    if allowed_namespaces:
        condition = {"StringLike": {"cloudwatch:namespace": [f"{prefix}*" for prefix in allowed_namespaces]}}
    else:
        condition = {"StringNotLike": {"cloudwatch:namespace": [f"{RESERVED_NAMESPACE_PREFIX}*"]}}
    return iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"], conditions=condition)

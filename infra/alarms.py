"""Alarms on the pipeline, all notifying one encrypted, TLS-only SNS topic."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.pipeline import MetricPipeline, removal_policy, service_name
from metricbatch.batcher.self_metrics import METRICS_REJECTED, SERVICE_DIMENSION
from metricbatch.deploy import PipelineSettings

ALARM_PERIOD: Final = cdk.Duration.minutes(1)
FUNCTION_ALARM_PERIOD: Final = cdk.Duration.minutes(5)


def self_metric(settings: PipelineSettings, name: str, *, period: cdk.Duration | None = None) -> cloudwatch.Metric:
    """One of the batcher's EMF self-metrics (namespace ``MetricBatch``, dimension ``service``), summed."""
    return cloudwatch.Metric(
        namespace=settings.self_metrics_namespace,
        metric_name=name,
        dimensions_map={SERVICE_DIMENSION: service_name(settings)},
        statistic=cloudwatch.Stats.SUM,
        period=period or FUNCTION_ALARM_PERIOD,
    )


class PipelineAlarms(Construct):
    """DLQ not empty, oldest message too old, batcher errors and throttles, rejected metrics.

    Attributes:
        topic: the SNS topic every alarm (and its recovery) notifies; subscribe on-call to it.
        alarms: the alarms by short name (``dlq_messages``, ``oldest_message_age``, ``batcher_errors``,
            ``batcher_throttles``, ``metrics_rejected``; with shards also ``oldest_message_age_<n>`` per shard).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: MetricPipeline,
        settings: PipelineSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        cloudwatch_service = iam.ServicePrincipal("cloudwatch.amazonaws.com")

        # A customer managed key, because CloudWatch cannot publish to a topic encrypted with the AWS managed
        # aws/sns key (its key policy cannot grant CloudWatch).
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"metricbatch alarm topic ({settings.name})",
            enable_key_rotation=True,
            removal_policy=removal_policy(settings),
        )
        self.key.grant(cloudwatch_service, "kms:Decrypt", "kms:GenerateDataKey")
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"metricbatch {settings.name} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_service],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        prefix = settings.stack_name
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD

        def alarm(
            alarm_id: str,
            what: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            comparison: cloudwatch.ComparisonOperator,
        ) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                alarm_id,
                alarm_description=f"{prefix}: {what}",
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )

        function = pipeline.function
        self.alarms: dict[str, cloudwatch.Alarm] = {
            "dlq_messages": alarm(
                "DlqMessages",
                "messages in the dead-letter queue; inspect and redrive them",
                pipeline.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    statistic=cloudwatch.Stats.MAXIMUM, period=ALARM_PERIOD
                ),
                settings.alarm_dlq_messages,
                at_least,
            ),
            "oldest_message_age": alarm(
                "OldestMessageAge",
                "metrics wait too long in the queue; the batcher is behind or failing",
                pipeline.queue.metric_approximate_age_of_oldest_message(
                    statistic=cloudwatch.Stats.MAXIMUM, period=ALARM_PERIOD
                ),
                settings.alarm_oldest_message_age_seconds,
                above,
            ),
            "batcher_errors": alarm(
                "BatcherErrors",
                "batcher invocations failed",
                function.metric_errors(statistic=cloudwatch.Stats.SUM, period=FUNCTION_ALARM_PERIOD),
                settings.alarm_batcher_errors,
                at_least,
            ),
            "batcher_throttles": alarm(
                "BatcherThrottles",
                "batcher invocations throttled; check account concurrency",
                function.metric_throttles(statistic=cloudwatch.Stats.SUM, period=FUNCTION_ALARM_PERIOD),
                settings.alarm_batcher_throttles,
                at_least,
            ),
            "metrics_rejected": alarm(
                METRICS_REJECTED,
                "producers sent metrics the batcher rejected; see the DLQ for reasons",
                self_metric(settings, METRICS_REJECTED),
                settings.alarm_metrics_rejected,
                at_least,
            ),
        }
        for index, queue in enumerate(pipeline.queues[1:], start=1):  # every shard's queue, not just the first
            self.alarms[f"oldest_message_age_{index}"] = alarm(
                f"OldestMessageAge{index}",
                f"metrics wait too long in shard queue {index}; its batcher is behind or failing",
                queue.metric_approximate_age_of_oldest_message(statistic=cloudwatch.Stats.MAXIMUM, period=ALARM_PERIOD),
                settings.alarm_oldest_message_age_seconds,
                above,
            )
        action = cloudwatch_actions.SnsAction(self.topic)
        for each in self.alarms.values():
            each.add_alarm_action(action)
            each.add_ok_action(action)

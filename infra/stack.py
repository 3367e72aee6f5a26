"""One metricbatch deployment: pipeline, alarms and savings dashboard of one environment."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.alarms import PipelineAlarms
from infra.dashboard import SavingsDashboard
from infra.pipeline import MetricPipeline
from metricbatch import env as env_names
from metricbatch.deploy import PipelineSettings


class MetricBatchingStack(cdk.Stack):
    """The stack of one environment, named ``settings.stack_name`` (``MetricBatching-<env>``).

    Attributes:
        pipeline: queue, dead-letter queue, batcher function and producer policy.
        alarms: alarms and their SNS topic.
        savings_dashboard: the CloudWatch dashboard.
    """

    def __init__(self, scope: Construct, *, settings: PipelineSettings, **stack_props: Any) -> None:
        super().__init__(
            scope,
            settings.stack_name,
            stack_name=settings.stack_name,
            description=f"metricbatch {settings.name}: custom metrics via SQS and a batching Lambda",
            **stack_props,
        )
        self.pipeline = MetricPipeline(self, "Pipeline", settings=settings)
        self.alarms = PipelineAlarms(self, "Alarms", pipeline=self.pipeline, settings=settings)
        self.savings_dashboard = SavingsDashboard(self, "Savings", pipeline=self.pipeline, settings=settings)

        cdk.Tags.of(self).add("project", "metricbatch")
        cdk.Tags.of(self).add("environment", settings.name)
        for key, value in settings.tags.items():
            cdk.Tags.of(self).add(key, value)

        # Plain outputs, no export names: exports are account-and-region global and would clash between stacks.
        cdk.CfnOutput(self, "QueueUrl", value=self.pipeline.queue.queue_url, description=env_names.QUEUE_URL)
        if settings.shards > 1:
            cdk.CfnOutput(
                self,
                "QueueUrls",
                value=cdk.Fn.join(",", [queue.queue_url for queue in self.pipeline.queues]),
                description=f"{env_names.QUEUE_URLS} (shard order matters: producers route series by it)",
            )
            cdk.CfnOutput(
                self,
                "ProducerRoundSeconds",
                value=str(settings.producer_round_seconds),
                description=env_names.ROUND_SECONDS,
            )
        cdk.CfnOutput(self, "DeadLetterQueueUrl", value=self.pipeline.dead_letter_queue.queue_url)
        cdk.CfnOutput(
            self,
            "ProducerPolicyArn",
            value=self.pipeline.producer_policy.managed_policy_arn,
            description="Attach to every role that calls send_metric()",
        )
        cdk.CfnOutput(self, "DashboardName", value=self.savings_dashboard.dashboard.dashboard_name)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)

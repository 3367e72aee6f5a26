"""The savings dashboard: what batching saved against one PutMetricData call per metric, what the pipeline cost,
and how the queue and the batcher are doing. Every number is CloudWatch metric math over live metrics."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.alarms import self_metric
from infra.pipeline import MetricPipeline
from metricbatch.batcher.self_metrics import (
    DUPLICATE_MESSAGES_SKIPPED,
    MESSAGES_REQUEUED,
    MESSAGES_SET_ASIDE,
    METRICS_PUBLISHED,
    METRICS_RECEIVED,
    METRICS_REJECTED,
    PUT_METRIC_DATA_CALLS,
    PUT_METRIC_DATA_RETRIES,
)
from metricbatch.deploy import PipelineSettings
from metricbatch.limits import (
    PRICE_CUSTOM_METRIC_MONTH,
    PRICE_LAMBDA_PER_GB_SECOND_ARM64,
    PRICE_LAMBDA_PER_REQUEST,
    PRICE_PUT_METRIC_DATA_PER_REQUEST,
    PRICE_SQS_PER_REQUEST,
)

TREND_PERIOD: Final = cdk.Duration.hours(1)
OPS_PERIOD: Final = cdk.Duration.minutes(5)
MB_PER_GB: Final = 1024
MS_PER_SECOND: Final = 1000


def _number(value: float) -> str:
    """A price as metric math accepts it: plain decimal notation, no exponent."""
    text = f"{value:.15f}".rstrip("0").rstrip(".")
    return text or "0"


def dashboard_name(settings: PipelineSettings, region: str) -> str:
    # Dashboards are global to an account: the environment and the region keep names apart.
    return f"{settings.stack_name}-savings-{region}"


class SavingsDashboard(Construct):
    """A CloudWatch dashboard of savings, pipeline cost and pipeline health.

    Attributes:
        dashboard: the CloudWatch dashboard.
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
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name(settings, cdk.Stack.of(self).region),
            default_interval=cdk.Duration.days(7),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# metricbatch {settings.name}: savings\n"
                    "Savings are measured against one `PutMetricData` call per metric "
                    f"(${_number(PRICE_PUT_METRIC_DATA_PER_REQUEST * 1000)} per 1,000 calls): calls saved = metrics "
                    "published - PutMetricData calls (data being retried or re-queued saves nothing until published). "
                    f"Pipeline cost: SQS requests (${_number(PRICE_SQS_PER_REQUEST * 1e6)}/million, counted per "
                    "message, so an upper bound) and the batcher "
                    f"(${_number(PRICE_LAMBDA_PER_REQUEST * 1e6)}/million invocations, "
                    f"${_number(PRICE_LAMBDA_PER_GB_SECOND_ARM64)}/GB-s arm64). us-east-1 list prices. "
                    f"Custom metric storage (${_number(PRICE_CUSTOM_METRIC_MONTH)}/metric-month) is not changed "
                    "by batching and not shown."
                ),
                width=24,
                height=3,
            )
        )
        self.dashboard.add_widgets(*self._savings_totals(pipeline, settings))
        self.dashboard.add_widgets(*self._savings_trends(pipeline, settings))
        self.dashboard.add_widgets(*self._queue_health(pipeline))
        self.dashboard.add_widgets(*self._batcher_health(pipeline, settings))

    def _savings_totals(self, pipeline: MetricPipeline, settings: PipelineSettings) -> list[cloudwatch.IWidget]:
        m = _SavingsMath(pipeline, settings, period=TREND_PERIOD)
        return [
            cloudwatch.SingleValueWidget(
                title="Over the selected time range",
                metrics=[m.published, m.calls, m.saved, m.reduction_percent],
                set_period_to_time_range=True,
                full_precision=False,
                width=12,
                height=4,
            ),
            cloudwatch.SingleValueWidget(
                title="Dollars over the selected time range",
                metrics=[m.dollars_saved, m.pipeline_cost, m.net_saving],
                set_period_to_time_range=True,
                full_precision=True,
                width=12,
                height=4,
            ),
        ]

    def _savings_trends(self, pipeline: MetricPipeline, settings: PipelineSettings) -> list[cloudwatch.IWidget]:
        m = _SavingsMath(pipeline, settings, period=TREND_PERIOD)
        return [
            cloudwatch.GraphWidget(
                title="Metrics in, PutMetricData calls out (per hour)",
                left=[m.received, m.published, m.calls, m.saved],
                right=[m.reduction_percent],
                right_y_axis=cloudwatch.YAxisProps(label="% of calls saved", min=0, max=100, show_units=False),
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dollars per hour: saved, pipeline cost, net",
                left=[m.dollars_saved, m.sqs_cost, m.lambda_cost, m.net_saving],
                left_y_axis=cloudwatch.YAxisProps(label="USD", show_units=False),
                width=12,
            ),
        ]

    def _queue_health(self, pipeline: MetricPipeline) -> list[cloudwatch.IWidget]:
        dlq = pipeline.dead_letter_queue
        sharded = len(pipeline.queues) > 1
        return [
            *(
                self._queue_widget(
                    queue, "Queue depth and age of oldest message" + (f" (shard {i})" if sharded else "")
                )
                for i, queue in enumerate(pipeline.queues)
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    dlq.metric_approximate_number_of_messages_visible(
                        statistic=cloudwatch.Stats.MAXIMUM, period=OPS_PERIOD, label="DLQ messages"
                    )
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _queue_widget(queue: sqs.IQueue, title: str) -> cloudwatch.IWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=[
                queue.metric_approximate_number_of_messages_visible(
                    statistic=cloudwatch.Stats.MAXIMUM, period=OPS_PERIOD, label="Visible"
                ),
                queue.metric_approximate_number_of_messages_not_visible(
                    statistic=cloudwatch.Stats.MAXIMUM, period=OPS_PERIOD, label="In flight"
                ),
            ],
            right=[
                queue.metric_approximate_age_of_oldest_message(
                    statistic=cloudwatch.Stats.MAXIMUM, period=OPS_PERIOD, label="Oldest message (s)"
                )
            ],
            width=12,
        )

    def _batcher_health(self, pipeline: MetricPipeline, settings: PipelineSettings) -> list[cloudwatch.IWidget]:
        function = pipeline.function
        return [
            cloudwatch.GraphWidget(
                title="Batcher errors and throttles",
                left=[
                    function.metric_errors(statistic=cloudwatch.Stats.SUM, period=OPS_PERIOD, label="Errors"),
                    function.metric_throttles(statistic=cloudwatch.Stats.SUM, period=OPS_PERIOD, label="Throttles"),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Batcher duration (ms)",
                left=[
                    function.metric_duration(statistic=cloudwatch.Stats.AVERAGE, period=OPS_PERIOD, label="Average"),
                    function.metric_duration(statistic=cloudwatch.Stats.p(99), period=OPS_PERIOD, label="p99"),
                    function.metric_duration(statistic=cloudwatch.Stats.MAXIMUM, period=OPS_PERIOD, label="Maximum"),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"Batcher concurrency (event source maximum {settings.max_concurrency})",
                left=[
                    function.metric(
                        "ConcurrentExecutions",
                        statistic=cloudwatch.Stats.MAXIMUM,
                        period=OPS_PERIOD,
                        label="Concurrent executions",
                    )
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=settings.max_concurrency, label="max_concurrency")
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Rejected, retried, re-queued, set aside, duplicates skipped",
                left=[
                    self_metric(settings, name, period=OPS_PERIOD)
                    for name in (
                        METRICS_REJECTED,
                        PUT_METRIC_DATA_RETRIES,
                        MESSAGES_REQUEUED,
                        MESSAGES_SET_ASIDE,
                        DUPLICATE_MESSAGES_SKIPPED,
                    )
                ],
                width=6,
            ),
        ]


class _SavingsMath:
    """Metric-math expressions of the savings and of the pipeline's own cost, one set per widget."""

    def __init__(self, pipeline: MetricPipeline, settings: PipelineSettings, *, period: cdk.Duration) -> None:
        def metric(name: str) -> cloudwatch.Metric:
            return self_metric(settings, name, period=period)

        self.received = metric(METRICS_RECEIVED).with_(label="Metrics received")
        self.published = metric(METRICS_PUBLISHED).with_(label="Metrics published")
        self.calls = metric(PUT_METRIC_DATA_CALLS).with_(label="PutMetricData calls")
        # The batcher's definition (self_metrics.api_calls_saved): samples published less the calls that published
        # them; data received but not (yet) published saves nothing, and is counted once when it is published.
        self.saved = cloudwatch.MathExpression(
            expression="FILL(published, 0) - FILL(calls, 0)",
            using_metrics={"published": metric(METRICS_PUBLISHED), "calls": metric(PUT_METRIC_DATA_CALLS)},
            label="API calls saved",
            period=period,
        )
        self.reduction_percent = cloudwatch.MathExpression(
            expression="IF(FILL(published, 0) > 0, "
            "100 * (FILL(published, 0) - FILL(calls, 0)) / FILL(published, 0), 0)",
            using_metrics={"published": metric(METRICS_PUBLISHED), "calls": metric(PUT_METRIC_DATA_CALLS)},
            label="API calls saved (%)",
            period=period,
        )
        self.dollars_saved = cloudwatch.MathExpression(
            expression=f"saved * {_number(PRICE_PUT_METRIC_DATA_PER_REQUEST)}",
            using_metrics={"saved": self.saved},
            label="Saved on PutMetricData ($)",
            period=period,
        )

        dlq, function = pipeline.dead_letter_queue, pipeline.function
        sqs_requests: dict[str, cloudwatch.IMetric] = {}
        for index, queue in enumerate(pipeline.queues):  # every shard's queue; shard 0 keeps the unsuffixed ids
            suffix = str(index) if index else ""
            sqs_requests.update(
                {
                    f"sent{suffix}": queue.metric_number_of_messages_sent(
                        statistic=cloudwatch.Stats.SUM, period=period
                    ),
                    f"received{suffix}": queue.metric_number_of_messages_received(
                        statistic=cloudwatch.Stats.SUM, period=period
                    ),
                    f"deleted{suffix}": queue.metric_number_of_messages_deleted(
                        statistic=cloudwatch.Stats.SUM, period=period
                    ),
                    # The event source mapping long-polls all the time; empty receives are billed requests too.
                    f"empty{suffix}": queue.metric_number_of_empty_receives(
                        statistic=cloudwatch.Stats.SUM, period=period
                    ),
                }
            )
        sqs_requests["dlqsent"] = dlq.metric_number_of_messages_sent(statistic=cloudwatch.Stats.SUM, period=period)
        self.sqs_cost = cloudwatch.MathExpression(
            expression="("
            + " + ".join(f"FILL({key}, 0)" for key in sqs_requests)
            + f") * {_number(PRICE_SQS_PER_REQUEST)}",
            using_metrics=dict(sqs_requests),
            label="SQS requests ($)",
            period=period,
        )
        memory_gb = settings.function_memory_mb / MB_PER_GB
        self.lambda_cost = cloudwatch.MathExpression(
            expression=f"FILL(invocations, 0) * {_number(PRICE_LAMBDA_PER_REQUEST)} + FILL(durationms, 0) / "
            f"{MS_PER_SECOND} * {_number(memory_gb)} * {_number(PRICE_LAMBDA_PER_GB_SECOND_ARM64)}",
            using_metrics={
                "invocations": function.metric_invocations(statistic=cloudwatch.Stats.SUM, period=period),
                "durationms": function.metric_duration(statistic=cloudwatch.Stats.SUM, period=period),
            },
            label="Batcher Lambda ($)",
            period=period,
        )
        self.pipeline_cost = cloudwatch.MathExpression(
            expression="sqscost + lambdacost",
            using_metrics={"sqscost": self.sqs_cost, "lambdacost": self.lambda_cost},
            label="Pipeline cost ($)",
            period=period,
        )
        self.net_saving = cloudwatch.MathExpression(
            expression="dollarssaved - pipelinecost",
            using_metrics={"dollarssaved": self.dollars_saved, "pipelinecost": self.pipeline_cost},
            label="Net saving ($)",
            period=period,
        )

"""Alarms: what they watch, when they fire, and that each notifies the alarm topic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metricbatch.batcher.self_metrics import METRICS_REJECTED

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

ALARM_COUNT = 5


def _alarms(result: SynthResult) -> list[dict[str, Any]]:
    return [a["Properties"] for a in result.resources("AWS::CloudWatch::Alarm").values()]


def _alarm(result: SynthResult, namespace: str, metric_name: str) -> dict[str, Any]:
    (alarm,) = [a for a in _alarms(result) if a["Namespace"] == namespace and a["MetricName"] == metric_name]
    return alarm


def test_every_alarm_notifies_the_topic(env_synth: SynthResult) -> None:
    topic_id, _ = env_synth.only("AWS::SNS::Topic")
    alarms = _alarms(env_synth)
    assert len(alarms) == ALARM_COUNT
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["EvaluationPeriods"] >= 1


def test_dlq_alarm(env_synth: SynthResult) -> None:
    _, dlq_id = env_synth.queue_ids
    alarm = _alarm(env_synth, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == env_synth.settings.alarm_dlq_messages == 1
    assert alarm["Statistic"] == "Maximum"


def test_oldest_message_age_alarm(env_synth: SynthResult) -> None:
    main_id, _ = env_synth.queue_ids
    alarm = _alarm(env_synth, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [main_id, "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == env_synth.settings.alarm_oldest_message_age_seconds


def test_oldest_message_age_threshold_differs_by_environment(synth: SynthCache) -> None:
    thresholds = {
        name: _alarm(synth(name), "AWS/SQS", "ApproximateAgeOfOldestMessage")["Threshold"]
        for name in ("dev", "staging", "prod")
    }
    assert thresholds == {"dev": 300, "staging": 300, "prod": 180}


def test_batcher_errors_and_throttles_alarms(env_synth: SynthResult) -> None:
    function_id, _ = env_synth.only("AWS::Lambda::Function")
    for metric_name, threshold in (
        ("Errors", env_synth.settings.alarm_batcher_errors),
        ("Throttles", env_synth.settings.alarm_batcher_throttles),
    ):
        alarm = _alarm(env_synth, "AWS/Lambda", metric_name)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        assert alarm["Statistic"] == "Sum"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Threshold"] == threshold


def test_metrics_rejected_alarm_fires_on_any_rejection(env_synth: SynthResult) -> None:
    alarm = _alarm(env_synth, "MetricBatch", METRICS_REJECTED)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": f"metricbatch-{env_synth.settings.name}"}]
    assert alarm["Statistic"] == "Sum"
    # Counts are whole numbers: ">= 1" is "> 0".
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1


def test_no_email_subscription_unless_configured(env_synth: SynthResult) -> None:
    assert env_synth.settings.alarm_email is None
    assert env_synth.resources("AWS::SNS::Subscription") == {}


def test_email_subscription_from_settings(synth: SynthCache) -> None:
    result = synth("custom")
    topic_id, _ = result.only("AWS::SNS::Topic")
    _, subscription = result.only("AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Endpoint": "oncall@example.com",
        "Protocol": "email",
        "TopicArn": {"Ref": topic_id},
    }

"""Issue 27, the scale setting: ``-c shards=N`` makes N queues, one event source mapping each, the fleet batching
settings, alarms and dashboard widgets for every shard, producer grants on every queue, and the outputs producers
read (METRICBATCH_QUEUE_URLS, METRICBATCH_ROUND_SECONDS)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from metricbatch.deploy import FLEET_BATCH_SIZE, FLEET_BATCHING_WINDOW_SECONDS, FLEET_MAX_CONCURRENCY

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

SHARDS = 3


def _shard_queue_ids(result: SynthResult) -> list[str]:
    queues = result.resources("AWS::SQS::Queue")
    return sorted(k for k, v in queues.items() if "RedrivePolicy" in v["Properties"])


def test_one_queue_and_one_event_source_per_shard_with_the_fleet_settings(synth: SynthCache) -> None:
    result = synth("shards")
    assert result.returncode == 0, result.stderr
    queue_ids = _shard_queue_ids(result)
    assert len(queue_ids) == SHARDS
    mappings = result.resources("AWS::Lambda::EventSourceMapping")
    sources = sorted(m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings.values())
    assert sources == queue_ids
    for mapping in mappings.values():
        props = mapping["Properties"]
        assert props["BatchSize"] == FLEET_BATCH_SIZE
        assert props["MaximumBatchingWindowInSeconds"] == FLEET_BATCHING_WINDOW_SECONDS
        assert props["ScalingConfig"] == {"MaximumConcurrency": FLEET_MAX_CONCURRENCY}
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # one dead-letter queue for all shards
    dlqs = [k for k, v in result.resources("AWS::SQS::Queue").items() if "RedrivePolicy" not in v["Properties"]]
    assert len(dlqs) == 1
    for queue_id in queue_ids:
        redrive = result.template["Resources"][queue_id]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlqs[0], "Arn"]}


def test_default_deployment_is_unchanged(synth: SynthCache) -> None:
    result = synth("prod")
    (mapping,) = result.resources("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 20
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 30
    assert "QueueUrls" not in result.template["Outputs"]


def test_outputs_give_producers_the_shard_list_in_order_and_the_round(synth: SynthCache) -> None:
    result = synth("shards")
    outputs = result.template["Outputs"]
    rendered = result.render(outputs["QueueUrls"]["Value"])
    first = outputs["QueueUrl"]["Value"]["Ref"]
    urls = rendered.split(",")
    assert len(urls) == SHARDS and urls[0] == f"<{first}>"
    assert sorted(u.strip("<>") for u in urls) == _shard_queue_ids(result)
    assert outputs["ProducerRoundSeconds"]["Value"] == "60"


def test_producer_policy_can_send_to_every_shard(synth: SynthCache) -> None:
    result = synth("shards")
    _, policy = result.only("AWS::IAM::ManagedPolicy")
    resources: list[Any] = []
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if "sqs:SendMessage" in json.dumps(statement["Action"]):
            found = statement["Resource"]
            resources.extend(found if isinstance(found, list) else [found])
    assert sorted(r["Fn::GetAtt"][0] for r in resources) == _shard_queue_ids(result)


def test_every_shard_has_an_age_alarm_and_a_dashboard_widget(synth: SynthCache) -> None:
    result = synth("shards")
    alarmed = []
    for alarm in result.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("MetricName") == "ApproximateAgeOfOldestMessage":
            (dimension,) = props["Dimensions"]
            alarmed.append(dimension["Value"]["Fn::GetAtt"][0])
            assert props["AlarmActions"] and props["Threshold"] == result.settings.alarm_oldest_message_age_seconds
    assert sorted(alarmed) == _shard_queue_ids(result)
    _, dashboard = result.only("AWS::CloudWatch::Dashboard")
    body = json.loads(result.render(dashboard["Properties"]["DashboardBody"]))
    shown = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            parts = [str(p) for p in row if not isinstance(p, dict)]
            if parts[:2] == ["AWS/SQS", "ApproximateAgeOfOldestMessage"]:
                shown.add(parts[3].strip("<>").removesuffix(".QueueName"))
    assert sorted(shown) == _shard_queue_ids(result)

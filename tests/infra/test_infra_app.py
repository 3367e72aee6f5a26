"""The app as `cdk synth` runs it: one stack per environment, context overrides, outputs, cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

import app as cdk_app
from infra.nag import acknowledge, add_nag_checks
from metricbatch.deploy import settings_for
from metricbatch.exceptions import ConfigurationError

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult


def test_synth_passes_cdk_nag_with_no_findings_left(env_synth: SynthResult) -> None:
    assert env_synth.returncode == 0, env_synth.stderr
    assert "AwsSolutions" not in env_synth.stderr + env_synth.stdout
    report = json.loads((env_synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []


def test_each_environment_has_its_own_stack(synth: SynthCache) -> None:
    names = [synth(name).stack_name for name in ("dev", "staging", "prod")]
    assert names == ["MetricBatching-dev", "MetricBatching-staging", "MetricBatching-prod"]
    for name in ("dev", "staging", "prod"):
        artifact = synth(name).manifest["artifacts"][f"MetricBatching-{name}"]
        assert artifact["properties"].get("stackName", f"MetricBatching-{name}") == settings_for(name).stack_name
        assert artifact["displayName"] == settings_for(name).stack_name
        # Region from CDK_DEFAULT_REGION (the CLI sets it from AWS_REGION); no account without credentials.
        assert artifact["environment"] == "aws://unknown-account/eu-west-1"


def test_outputs_reference_the_resources_and_export_nothing(env_synth: SynthResult) -> None:
    main_id, dlq_id = env_synth.queue_ids
    policy_id, _ = env_synth.only("AWS::IAM::ManagedPolicy")
    dashboard_id, _ = env_synth.only("AWS::CloudWatch::Dashboard")
    topic_id, _ = env_synth.only("AWS::SNS::Topic")
    outputs = env_synth.template["Outputs"]
    assert {name: output["Value"] for name, output in outputs.items()} == {
        "QueueUrl": {"Ref": main_id},
        "DeadLetterQueueUrl": {"Ref": dlq_id},
        "ProducerPolicyArn": {"Ref": policy_id},
        "DashboardName": {"Ref": dashboard_id},
        "AlarmTopicArn": {"Ref": topic_id},
    }
    assert not [name for name, output in outputs.items() if "Export" in output]


def test_tags_from_settings_reach_the_resources(synth: SynthCache) -> None:
    result = synth("custom")
    _, queue = result.only("AWS::Lambda::Function")
    tags = {tag["Key"]: tag["Value"] for tag in queue["Properties"]["Tags"]}
    assert tags == {"project": "metricbatch", "environment": "staging", "team": "observability"}


def test_settings_from_context_defaults_to_dev() -> None:
    assert cdk_app.settings_from_context(cdk.App()) == settings_for("dev")


def test_settings_from_context_direct_keys_beat_overrides() -> None:
    app = cdk.App(
        context={
            "env": "prod",
            "overrides": '{"max_concurrency": 3, "allowed_namespaces": ["Shop/"]}',
            "max_concurrency": "9",
            "tags": '{"team": "obs"}',
        }
    )
    settings = cdk_app.settings_from_context(app)
    assert settings.name == "prod"
    assert settings.max_concurrency == 9
    assert settings.allowed_namespaces == ("Shop/",)
    assert settings.tags == {"team": "obs"}
    assert settings.log_retention_days == settings_for("prod").log_retention_days


@pytest.mark.parametrize(
    "context",
    [
        {"env": "qa"},
        {"overrides": '{"nonsense_setting": 1}'},
        {"overrides": "[1, 2]"},
        {"max_concurrency": "1"},
        {"encryption_key": "aws-managed"},
        {"encryption_key": "arn:aws:kms:eu-west-1:111122223333:alias/metrics"},  # an alias, not a key
    ],
)
def test_bad_context_is_refused(context: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        cdk_app.settings_from_context(cdk.App(context=context))


def _app_with_plain_bucket(tmp_path: Path) -> tuple[cdk.App, s3.Bucket]:
    app = cdk.App(outdir=str(tmp_path))
    bucket = s3.Bucket(cdk.Stack(app, "NagProbe"), "PlainBucket")  # no access logs, no TLS-only policy
    add_nag_checks(app)
    return app, bucket


def test_an_unacknowledged_nag_finding_fails_synth(tmp_path: Path) -> None:
    app, _ = _app_with_plain_bucket(tmp_path)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-S1" in report
    assert "AwsSolutions-S10" in report


def test_acknowledged_nag_findings_let_synth_pass(tmp_path: Path) -> None:
    app, bucket = _app_with_plain_bucket(tmp_path)
    acknowledge(bucket, rule_id="AwsSolutions-S1", reason="probe bucket of a test; never deployed")
    acknowledge(bucket, rule_id="AwsSolutions-S10", reason="probe bucket of a test; never deployed")
    app.synth()


def test_an_acknowledgement_needs_a_reason() -> None:
    stack = cdk.Stack(cdk.App(), "NoReason")
    with pytest.raises(ValueError, match="reason"):
        acknowledge(stack, rule_id="AwsSolutions-S1", reason=" ")

"""Least privilege: what the batcher, the producers and CloudWatch may do, and nothing more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _identity_policy_statements(result: SynthResult) -> list[dict[str, Any]]:
    found = []
    for resource in result.template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            found += _statements(props["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::Role":
            for inline in props.get("Policies", []):
                found += _statements(inline["PolicyDocument"])
    return found


def _batcher_policy(result: SynthResult) -> tuple[str, dict[str, Any]]:
    role_id, _ = result.only("AWS::IAM::Role")
    (policy,) = [
        (k, v)
        for k, v in result.resources("AWS::IAM::Policy").items()
        if v["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return policy


def _actions_by_resource(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in _as_list(statement["Resource"]):
            key = resource if isinstance(resource, str) else repr(resource)
            grouped.setdefault(key, set()).update(_as_list(statement["Action"]))
    return grouped


def test_no_wildcard_in_any_identity_policy_action(env_synth: SynthResult) -> None:
    statements = _identity_policy_statements(env_synth)
    assert len(statements) >= 5
    for statement in statements:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement


def test_only_put_metric_data_has_resource_star(env_synth: SynthResult) -> None:
    for statement in _identity_policy_statements(env_synth):
        if "*" in _as_list(statement["Resource"]):
            assert _as_list(statement["Action"]) == ["cloudwatch:PutMetricData"]
            assert "Condition" in statement


def test_batcher_role_is_for_lambda_without_managed_policies(env_synth: SynthResult) -> None:
    _, role = env_synth.only("AWS::IAM::Role")
    props = role["Properties"]
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in props
    assert "Policies" not in props


def test_batcher_permissions_exactly(env_synth: SynthResult) -> None:
    main_id, dlq_id = env_synth.queue_ids
    log_group_id, _ = env_synth.only("AWS::Logs::LogGroup")
    _, policy = _batcher_policy(env_synth)
    grouped = _actions_by_resource(_statements(policy["Properties"]["PolicyDocument"]))
    assert grouped == {
        repr({"Fn::GetAtt": [main_id, "Arn"]}): {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:SendMessage",  # re-queue of unsent datums
        },
        repr({"Fn::GetAtt": [dlq_id, "Arn"]}): {"sqs:SendMessage"},
        repr({"Fn::GetAtt": [log_group_id, "Arn"]}): {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": {"cloudwatch:PutMetricData"},
    }


def _put_metric_data_condition(result: SynthResult) -> dict[str, Any]:
    _, policy = _batcher_policy(result)
    (statement,) = [
        s for s in _statements(policy["Properties"]["PolicyDocument"]) if s["Action"] == "cloudwatch:PutMetricData"
    ]
    condition: dict[str, Any] = statement["Condition"]
    return condition


def test_put_metric_data_excludes_aws_namespaces_when_no_prefixes_are_set(env_synth: SynthResult) -> None:
    assert env_synth.settings.allowed_namespaces == ()
    assert _put_metric_data_condition(env_synth) == {"StringNotLike": {"cloudwatch:namespace": ["AWS/*"]}}


def test_put_metric_data_is_limited_to_the_allowed_prefixes(synth: SynthCache) -> None:
    result = synth("custom")
    assert result.returncode == 0, result.stderr
    assert _put_metric_data_condition(result) == {"StringLike": {"cloudwatch:namespace": ["Shop/*", "Payments/*"]}}


def test_producer_policy_may_only_send_to_the_queue(env_synth: SynthResult) -> None:
    main_id, _ = env_synth.queue_ids
    _, policy = env_synth.only("AWS::IAM::ManagedPolicy")
    props = policy["Properties"]
    assert _statements(props["PolicyDocument"]) == [
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [main_id, "Arn"]}}
    ]
    assert not {"Roles", "Users", "Groups"} & set(props), "attaching is the producers' business"


def test_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_can_use(env_synth: SynthResult) -> None:
    key_id, key = env_synth.only("AWS::KMS::Key")
    _, topic = env_synth.only("AWS::SNS::Topic")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    cloudwatch = [
        s
        for s in _statements(key["Properties"]["KeyPolicy"])
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch) == 1
    assert set(_as_list(cloudwatch[0]["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_alarm_topic_policy(env_synth: SynthResult) -> None:
    topic_id, _ = env_synth.only("AWS::SNS::Topic")
    _, policy = env_synth.only("AWS::SNS::TopicPolicy")
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = _statements(policy["Properties"]["PolicyDocument"])
    deny_plain_http = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(deny_plain_http) == 1
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}

"""encryption_key per environment: SQS-owned keys, a key the stack creates, or an existing key; grants follow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conftest import EXISTING_KEY_ARN, SYNTH_REGION

if TYPE_CHECKING:
    from conftest import SynthCache, SynthResult

SEND_ACTIONS = {"kms:GenerateDataKey", "kms:Decrypt"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _encrypted(result: SynthResult) -> dict[str, Any]:
    """What each queue and the log group are encrypted with (None: no customer managed key)."""
    main_id, dlq_id = result.queue_ids
    resources = result.template["Resources"]
    _, log_group = result.only("AWS::Logs::LogGroup")
    return {
        "queue": resources[main_id]["Properties"].get("KmsMasterKeyId"),
        "dlq": resources[dlq_id]["Properties"].get("KmsMasterKeyId"),
        "log_group": log_group["Properties"].get("KmsKeyId"),
    }


def _kms_actions_on(result: SynthResult, policy_type: str, key: Any) -> set[str]:
    """KMS actions the batcher's policy (AWS::IAM::Policy) or the producer policy grants on ``key``."""
    found: set[str] = set()
    for resource in result.resources(policy_type).values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if key in _as_list(statement["Resource"]):
                found.update(a for a in _as_list(statement["Action"]) if a.startswith("kms:"))
    return found


def _pipeline_keys(result: SynthResult) -> dict[str, dict[str, Any]]:
    """KMS keys other than the alarm topic's."""
    return {k: v for k, v in result.resources("AWS::KMS::Key").items() if k.startswith("Pipeline")}


def test_default_is_sse_sqs_and_no_customer_key(env_synth: SynthResult) -> None:
    assert env_synth.settings.encryption_key == "sqs-managed"
    for queue in env_synth.resources("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert _encrypted(env_synth) == {"queue": None, "dlq": None, "log_group": None}
    assert _pipeline_keys(env_synth) == {}
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for resource in env_synth.resources(policy_type).values():
            actions = [a for s in resource["Properties"]["PolicyDocument"]["Statement"] for a in _as_list(s["Action"])]
            assert not [a for a in actions if a.startswith("kms:")], resource


def test_kms_creates_one_rotated_key_for_queues_dlq_and_logs(synth: SynthCache) -> None:
    result = synth("kms")
    assert result.returncode == 0, result.stderr
    ((key_id, key),) = _pipeline_keys(result).items()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"  # prod: the key outlives the stack, like the data it protects
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    assert _encrypted(result) == {"queue": key_arn, "dlq": key_arn, "log_group": key_arn}
    for queue in result.resources("AWS::SQS::Queue").values():
        assert "SqsManagedSseEnabled" not in queue["Properties"]
    # CloudWatch Logs of this region may use it, for this account's log groups only.
    (logs_statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": f"logs.{SYNTH_REGION}.amazonaws.com"}
    ]
    assert "kms:GenerateDataKey*" in logs_statement["Action"]
    condition = result.render(logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert condition == f"arn:aws:logs:{SYNTH_REGION}:<AWS::AccountId>:log-group:*"
    assert _kms_actions_on(result, "AWS::IAM::Policy", key_arn) == SEND_ACTIONS
    assert _kms_actions_on(result, "AWS::IAM::ManagedPolicy", key_arn) == SEND_ACTIONS


def test_an_existing_key_arn_is_used_as_it_is_and_granted(synth: SynthCache) -> None:
    result = synth("custom")
    assert result.returncode == 0, result.stderr
    assert result.settings.encryption_key == EXISTING_KEY_ARN
    assert _pipeline_keys(result) == {}  # nothing created: the key and its policy are the operator's
    assert _encrypted(result) == {"queue": EXISTING_KEY_ARN, "dlq": EXISTING_KEY_ARN, "log_group": EXISTING_KEY_ARN}
    assert _kms_actions_on(result, "AWS::IAM::Policy", EXISTING_KEY_ARN) == SEND_ACTIONS
    assert _kms_actions_on(result, "AWS::IAM::ManagedPolicy", EXISTING_KEY_ARN) == SEND_ACTIONS

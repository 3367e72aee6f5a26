"""Which AWS answers mean a wrong setting (no retry fixes them), and the region every client is made in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError

from metricbatch.aws.retry import CONFIGURATION_CODES, configuration_problem, error_code, is_retryable
from metricbatch.aws.session import aws_session
from metricbatch.exceptions import ConfigurationError

from ..fakes import client_error, throttling


@pytest.mark.parametrize(
    ("error", "names"),
    [
        (client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "SendMessageBatch"), "METRICBATCH_QUEUE_URL"),
        (client_error("QueueDoesNotExist", 400, "SendMessageBatch"), "AWS_REGION"),
        (client_error("AccessDenied", 403, "SendMessageBatch"), "sqs:SendMessage"),
        (client_error("KmsAccessDenied", 400, "SendMessageBatch"), "kms:GenerateDataKey"),
        (client_error("KMS.AccessDeniedException", 400, "SendMessageBatch"), "kms:Decrypt"),
        (client_error("UnrecognizedClientException", 400, "SendMessageBatch"), "credentials"),
        (NoCredentialsError(), "credentials"),
        (client_error("InvalidAddress", 404, "SendMessageBatch"), "AWS_ENDPOINT_URL"),
    ],
)
def test_a_wrong_setting_is_never_retried_and_names_what_to_check(error: Exception, names: str) -> None:
    problem = configuration_problem(error_code(error))
    assert problem is not None and names in problem
    assert is_retryable(error) is False


@pytest.mark.parametrize(
    "error",
    [throttling(), client_error("ServiceUnavailable", 503), EndpointConnectionError(endpoint_url="https://x")],
)
def test_an_outage_is_retried_and_is_no_configuration_problem(error: Exception) -> None:
    assert configuration_problem(error_code(error)) is None
    assert is_retryable(error) is True


@pytest.fixture
def no_profile_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").write_text("[default]\noutput = json\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)


@pytest.mark.usefixtures("no_profile_region")
def test_the_region_comes_from_aws_region_then_aws_default_region() -> None:
    assert aws_session(environ={"AWS_REGION": "eu-west-1"}).region_name == "eu-west-1"
    both = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert aws_session(environ=both).region_name == "eu-west-1"  # the AWS CLI v2's order
    assert aws_session("ap-south-1", environ=both).region_name == "ap-south-1"


@pytest.mark.usefixtures("no_profile_region")
def test_no_region_anywhere_is_a_configuration_error_naming_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigurationError, match=r"no AWS region: set AWS_REGION or AWS_DEFAULT_REGION"):
        aws_session(environ={})
    with pytest.raises(ConfigurationError, match=r"pass --region, or set AWS_REGION"):
        aws_session(environ={}, region_flag="--region")


def test_the_node_producer_classifies_every_configuration_code_the_python_one_does() -> None:
    # The two producers keep one list each (metricbatch/aws/retry.py, clients/node/src/retry.ts): they must not drift.
    node_retry = (Path(__file__).resolve().parents[3] / "clients" / "node" / "src" / "retry.ts").read_text()
    node_codes = set(re.findall(r'"([A-Za-z.]+)"', node_retry))
    assert sorted(set(CONFIGURATION_CODES) - node_codes) == []

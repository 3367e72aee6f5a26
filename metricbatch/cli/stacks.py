"""Reading a deployed environment's CloudFormation stack (MetricBatching-<env>) for the verbs that need it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from metricbatch.deploy import settings_for
from metricbatch.exceptions import MetricBatchError


class StackNotFoundError(MetricBatchError):
    """The environment's stack is not deployed in this account and region."""


def describe_stack(cloudformation: Any, env: str) -> dict[str, Any]:
    """The stack of ``env`` as DescribeStacks returns it; StackNotFoundError naming stack and region if absent."""
    stack_name = settings_for(env).stack_name
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            region = cloudformation.meta.region_name
            raise StackNotFoundError(
                f"stack {stack_name} does not exist in {region}: deploy it (npx cdk deploy -c env={env}) or check "
                "the region and account"
            ) from None
        raise
    return dict(stacks[0])


def stack_outputs(cloudformation: Any, env: str) -> dict[str, str]:
    """The stack's outputs by key."""
    return {o["OutputKey"]: o["OutputValue"] for o in describe_stack(cloudformation, env).get("Outputs", [])}

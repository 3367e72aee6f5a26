"""The boto3 session of the verbs that talk to AWS, with a region or a clear configuration error.

botocore (1.44, pinned) reads the region from ``AWS_DEFAULT_REGION`` and the profile's ``region`` only; it ignores
``AWS_REGION``, the variable the AWS CLI v2, the other AWS SDKs and Lambda use. The command line honours both, in
the AWS CLI v2's order: ``--region``, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError

from metricbatch.exceptions import ConfigurationError

REGION_VARIABLE = "AWS_REGION"  # read by the AWS CLI v2 and the other SDKs, not by botocore
DEFAULT_REGION_VARIABLE = "AWS_DEFAULT_REGION"  # read by botocore
NO_REGION_MESSAGE = (
    f"no AWS region: pass --region, or set {REGION_VARIABLE} or {DEFAULT_REGION_VARIABLE} "
    "(or region in the profile's ~/.aws/config)"
)


def aws_session(region: str | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 session whose region is set, from ``region`` or the variables above; ConfigurationError if none."""
    env = os.environ if environ is None else environ
    try:
        session = boto3.session.Session(region_name=region or env.get(REGION_VARIABLE) or None)
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise ConfigurationError(f"AWS configuration: {exc}") from None
    if not session.region_name:
        raise ConfigurationError(NO_REGION_MESSAGE)
    return session

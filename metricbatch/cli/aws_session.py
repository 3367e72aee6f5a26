"""The boto3 session of the verbs that talk to AWS: the shared resolution (``metricbatch.aws.session``), with the
command line's ``--region`` named in the error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metricbatch.aws.session import DEFAULT_REGION_VARIABLE, REGION_VARIABLE, no_region_message
from metricbatch.aws.session import aws_session as _shared_session

REGION_FLAG = "--region"
NO_REGION_MESSAGE = no_region_message(REGION_FLAG)

__all__ = ["DEFAULT_REGION_VARIABLE", "NO_REGION_MESSAGE", "REGION_VARIABLE", "aws_session"]


def aws_session(region: str | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 session whose region is set (``--region``, AWS_REGION, AWS_DEFAULT_REGION, the profile)."""
    return _shared_session(region, environ, region_flag=REGION_FLAG)

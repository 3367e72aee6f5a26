"""The boto3 session of everything that talks to AWS, with a region or a clear configuration error.

botocore (1.44, pinned) reads the region from ``AWS_DEFAULT_REGION`` and the profile's ``region`` only; it ignores
``AWS_REGION``, the variable the AWS CLI v2, the other AWS SDKs and Lambda use. metricbatch honours both, in the
AWS CLI v2's order: an explicit region, then ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile.
The producer and the command line both resolve the region here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import boto3
from botocore.exceptions import BotoCoreError

from metricbatch import env as env_names
from metricbatch.exceptions import ConfigurationError

REGION_VARIABLE: Final = env_names.AWS_REGION
DEFAULT_REGION_VARIABLE: Final = env_names.AWS_DEFAULT_REGION


def no_region_message(flag: str | None = None) -> str:
    """What to set when no region is found (``flag``: the command line's own option, e.g. ``--region``)."""
    first = f"pass {flag}, or set" if flag else "set"
    return (
        f"no AWS region: {first} {REGION_VARIABLE} or {DEFAULT_REGION_VARIABLE} "
        "(or region in the profile's ~/.aws/config)"
    )


def aws_session(
    region: str | None = None, environ: Mapping[str, str] | None = None, *, region_flag: str | None = None
) -> Any:
    """A boto3 session whose region is set: ``region``, else the variables above, else the profile.

    ``region_flag``: the command line's option for the region, named in the error when none is found.

    Raises:
        ConfigurationError: no region anywhere, or the AWS configuration itself is broken (e.g. ``AWS_PROFILE``
            names a profile that does not exist).
    """
    env = os.environ if environ is None else environ
    try:
        session = boto3.session.Session(region_name=region or env.get(REGION_VARIABLE) or None)
    except BotoCoreError as exc:
        raise ConfigurationError(f"AWS configuration: {exc}") from None
    if not session.region_name:
        raise ConfigurationError(no_region_message(region_flag))
    return session

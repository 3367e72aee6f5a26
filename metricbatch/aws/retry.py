"""Error classification and the one retry loop (jittered backoff within a time budget) of the producer and batcher.

``attempts`` decides when to try again and how long to wait; the caller decides what a failure means::

    for attempt in attempts(policy, time_left=context_time_left, reserve=2.0, sleep=sleep):
        try:
            response = call()
        except Exception as exc:
            if is_retryable(exc):
                continue
            break
        return response
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from metricbatch.env import AWS_DEFAULT_REGION, AWS_REGION, QUEUE_URL

# Codes CloudWatch and SQS use for throttling or a temporary fault; retrying later can succeed.
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottledException",
    }
)
# Every AWS service's throttling codes (botocore's standard retry mode's list): how the SDK instrumentation tells a
# throttled call from a fault in any service, not only the two the pipeline calls.
SDK_THROTTLING_CODES: Final = THROTTLING_CODES | frozenset(
    {
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES: Final = frozenset(
    {"InternalServiceFault", "InternalFailure", "InternalError", "ServiceUnavailable", "RequestTimeout"}
)
# CloudWatch's answers for a request it will never accept as it is.
INVALID_REQUEST_CODES: Final = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterCombination",
        "InvalidParameterCombinationException",
        "MissingParameter",
        "MissingRequiredParameterException",
    }
)

_REGION = f"{AWS_REGION} / {AWS_DEFAULT_REGION}"
# Answers no retry can fix: a setting is wrong (the queue, its region, the role's permissions, the credentials).
# The Node producer keeps the same list in clients/node/src/retry.ts (a unit test checks every code here is there).
# SQS answers in JSON with its new codes (QueueDoesNotExist, KmsAccessDenied) and, to query-compatible clients such
# as botocore, with the old ones (AWS.SimpleQueueService.NonExistentQueue, KMS.AccessDeniedException); both are
# listed. Botocore's own exceptions (no credentials, a bad region name) are named by class (``error_code``).
_QUEUE_MISSING_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
_ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException")
_KMS_CODES = (
    "KmsAccessDenied", "KmsDisabled", "KmsInvalidKeyUsage", "KmsInvalidState", "KmsNotFound", "KmsOptInRequired",
    "KMS.AccessDeniedException", "KMS.DisabledException", "KMS.InvalidKeyUsageException",
    "KMS.InvalidStateException", "KMS.KMSInvalidStateException", "KMS.NotFoundException", "KMS.OptInRequired",
)  # fmt: skip
_CREDENTIALS_CODES = (
    "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
    "IncompleteSignature", "MissingAuthenticationToken", "MissingAuthenticationTokenException", "ExpiredToken",
    "ExpiredTokenException", "InvalidAccessKeyId", "AuthFailure", "NoCredentialsError", "PartialCredentialsError",
    "ProfileNotFound",
)  # fmt: skip
_REGION_CODES = (
    "InvalidAddress", "AWS.SimpleQueueService.InvalidAddress", "OptInRequired", "InvalidRegionError", "NoRegionError",
    "UnknownEndpointError",
)  # fmt: skip
CONFIGURATION_CODES: Final = {
    **dict.fromkeys(
        _QUEUE_MISSING_CODES, f"the queue does not exist in this region: check {QUEUE_URL} and the region ({_REGION})"
    ),
    **dict.fromkeys(_ACCESS_DENIED_CODES, f"access denied: the role needs sqs:SendMessage on the queue in {QUEUE_URL}"),
    **dict.fromkeys(
        _KMS_CODES, "the queue's KMS key refused: the role needs kms:GenerateDataKey and kms:Decrypt on it"
    ),
    **dict.fromkeys(
        _CREDENTIALS_CODES,
        "the AWS credentials are missing, invalid or expired (the access keys, AWS_PROFILE, the role)",
    ),
    **dict.fromkeys(
        _REGION_CODES,
        f"the region or endpoint does not match the queue: check {_REGION} and AWS_ENDPOINT_URL against {QUEUE_URL}",
    ),
}


def configuration_problem(code: str) -> str | None:
    """What to check when an AWS error ``code`` (see ``error_code``) means a wrong setting, else None."""
    return CONFIGURATION_CODES.get(code)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection-level failures (never a wrong setting, e.g. missing credentials)."""
    if configuration_problem(error_code(exc)) is not None:
        return False
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(exc, BotoCoreError | ConnectionError | TimeoutError)


def is_invalid_request(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in INVALID_REQUEST_CODES


def sdk_retries(response_or_exc: object) -> int:
    """Retries botocore made itself, from a response or a ClientError's response (0 when it does not say)."""
    response = getattr(response_or_exc, "response", response_or_exc)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
    return 0


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    upper = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, upper)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to try: at most ``max_attempts`` calls, full-jitter backoff between them."""

    max_attempts: int
    base_delay: float
    max_delay: float


def attempts(
    policy: RetryPolicy,
    *,
    time_left: Callable[[], float] | None = None,
    reserve: float = 0.0,
    always_try_once: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[int]:
    """Yield attempt numbers 0, 1, ...; before each retry, sleep a jittered backoff delay.

    Stops after ``policy.max_attempts``, or as soon as an attempt (after its delay) would leave no more than
    ``reserve`` seconds of ``time_left()``: the time the caller keeps back for what must follow (re-queueing,
    answering the event) is never slept away. With ``always_try_once`` the first attempt is made whatever the time
    (a last chance for the data, e.g. re-queueing it). The caller breaks out on success or on a failure not worth
    retrying.
    """
    for attempt in range(policy.max_attempts):
        delay = backoff_delay(attempt, base=policy.base_delay, cap=policy.max_delay) if attempt else 0.0
        if time_left is not None and (attempt or not always_try_once) and time_left() <= reserve + delay:
            return
        if delay:
            sleep(delay)
        yield attempt

"""Error classification and jittered backoff shared by the producer and the batcher."""

from __future__ import annotations

import random
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

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


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection-level failures."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return code in THROTTLING_CODES or code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(exc, BotoCoreError | ConnectionError | TimeoutError)


def is_invalid_request(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in INVALID_REQUEST_CODES


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**attempt))."""
    upper = min(cap, base * (2**attempt))
    return (rng or random).uniform(0, upper)

"""Which wire protocol a CloudWatch client speaks, against the one PutMetricData requests are sized for.

``packing`` measures each request as botocore's JSON protocol serializes it (``json.dumps`` of the parameters).
botocore picks the protocol from the service model: the first of its own supported protocols that the model's
``protocols`` list names (``ServiceModel.resolved_protocol``), or, in releases without that, ``metadata.protocol``.
CloudWatch's model lists ``smithy-rpc-v2-cbor``, ``json`` and ``query``; botocore 1.44 prefers ``json``. An older
botocore sends the query protocol instead, about twice the bytes (a 388 KB JSON body measured 2.05 MB as a query
string), so a request packed to 1,000,000 JSON bytes could break CloudWatch's 1 MB limit.
"""

from __future__ import annotations

from typing import Any, Final

import botocore

from metricbatch.exceptions import ConfigurationError

# botocore's name for AWS JSON 1.0/1.1, the protocol packing.py sizes requests for.
PACKED_PROTOCOL: Final = "json"


def client_protocol(client: Any) -> str:
    """The protocol this botocore client serializes requests with, decided as botocore decides it."""
    model = client.meta.service_model
    resolved = getattr(model, "resolved_protocol", None)  # absent before botocore learnt the `protocols` list
    return str(resolved or model.protocol)


def require_packed_protocol(client: Any) -> None:
    """Raise ConfigurationError unless the client sends PutMetricData with the protocol requests are sized for.

    Call it where the CloudWatch client is created, so a wrong SDK stops the function before it publishes.
    """
    protocol = client_protocol(client)
    if protocol != PACKED_PROTOCOL:
        raise ConfigurationError(
            f"this CloudWatch client would send PutMetricData with botocore's {protocol!r} protocol "
            f"(botocore {botocore.__version__}), but requests are sized for {PACKED_PROTOCOL!r} and could exceed "
            "CloudWatch's 1 MB limit; deploy the botocore pinned in requirements.txt [rule: cloudwatch.protocol]"
        )

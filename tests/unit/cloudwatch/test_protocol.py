"""The protocol guard: a CloudWatch client that would not send the JSON the packing sized is refused."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config

from metricbatch.cloudwatch.aggregation import Datum
from metricbatch.cloudwatch.packing import pack_requests
from metricbatch.cloudwatch.protocol import PACKED_PROTOCOL, client_protocol, require_packed_protocol
from metricbatch.exceptions import ConfigurationError

OFFLINE: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def cloudwatch_client(data_path: Path | None = None, **metadata: Any) -> Any:
    """A real botocore CloudWatch client; with ``metadata``, its service model's metadata is changed first."""
    session = botocore.session.get_session()
    if metadata:
        assert data_path is not None
        loader = session.get_component("data_loader")
        model = copy.deepcopy(loader.load_service_model("cloudwatch", "service-2"))
        model["metadata"].update(metadata)
        model["metadata"] = {k: v for k, v in model["metadata"].items() if v is not None}
        version_dir = data_path / "cloudwatch" / model["metadata"]["apiVersion"]
        version_dir.mkdir(parents=True)
        (version_dir / "service-2.json").write_text(json.dumps(model))
        session = botocore.session.get_session()  # a fresh loader, which finds the changed model first
        session.get_component("data_loader").search_paths.insert(0, str(data_path))
    # As the handler configures it: no client-side validation, no gzip (the body size is what is compared).
    config = Config(parameter_validation=False, disable_request_compression=True)
    return session.create_client("cloudwatch", config=config, **OFFLINE)


def sent_body_bytes(client: Any, params: dict[str, Any]) -> int:
    """Bytes of the PutMetricData body this client would put on the wire (answered locally, never sent)."""
    seen: list[int] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        seen.append(len(request.body))
        return AWSResponse(request.url, 200, HTTPHeaders(), None)

    client.meta.events.register("before-send.cloudwatch.PutMetricData", answer)
    with contextlib.suppress(Exception):  # the empty answer need not parse: the body was already measured
        client.put_metric_data(**params)
    assert len(seen) == 1
    return seen[0]


def full_request_params() -> dict[str, Any]:
    now = time.time()
    datums = [
        Datum("Shop", "Latency", (("Service", f"svc-{i}"),), "Milliseconds", 60, now, [i + 0.5, 2.0], [3.0, 1.0])
        for i in range(1000)
    ]
    (request,) = pack_requests(datums)
    return request.params() | {"_size": request.size_bytes}


def test_the_pinned_botocore_speaks_the_packed_protocol_and_the_guard_lets_it_run() -> None:
    client = cloudwatch_client()
    assert client_protocol(client) == PACKED_PROTOCOL == "json"
    require_packed_protocol(client)  # no error


def test_the_packing_estimate_is_exactly_what_the_json_client_sends() -> None:
    params = full_request_params()
    estimate = params.pop("_size")
    assert sent_body_bytes(cloudwatch_client(), params) == estimate


@pytest.mark.parametrize(
    "metadata",
    [
        {"protocols": ["query"], "protocol": "query"},  # a model whose only protocol is query
        {"protocols": None, "protocol": "query"},  # the model shape older botocore releases shipped
    ],
    ids=["protocols-list", "legacy-protocol-field"],
)
def test_a_client_that_would_send_the_query_protocol_is_refused(tmp_path: Path, metadata: dict[str, Any]) -> None:
    client = cloudwatch_client(tmp_path, **metadata)
    assert client_protocol(client) == "query"
    with pytest.raises(ConfigurationError, match=r"'query' protocol .* \[rule: cloudwatch\.protocol\]"):
        require_packed_protocol(client)
    # Why it matters: the same request is far bigger as a query string than the size the packing measured.
    params = full_request_params()
    estimate = params.pop("_size")
    assert sent_body_bytes(client, params) > 1.5 * estimate


def test_a_botocore_without_resolved_protocol_is_judged_by_its_model_protocol() -> None:
    class OldServiceModel:  # botocore before the `protocols` list: only metadata.protocol exists
        protocol = "query"

    class OldClient:
        class meta:  # botocore's attribute name
            service_model = OldServiceModel()

    assert client_protocol(OldClient()) == "query"
    with pytest.raises(ConfigurationError, match=r"cloudwatch\.protocol"):
        require_packed_protocol(OldClient())

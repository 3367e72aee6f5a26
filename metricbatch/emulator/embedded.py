"""Embedded AWS: moto's server on a free loopback port, behind the strict gateway, spoken to over HTTP."""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config

from metricbatch.deploy import PipelineSettings, settings_for
from metricbatch.emulator.gateway import AwsGateway

logger = logging.getLogger(__name__)

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DEFAULT_REGION = "us-east-1"


class EmbeddedAws:
    """A moto server in a thread, bound to 127.0.0.1 only. Use as a context manager or start()/stop()."""

    def __init__(self, *, region: str = DEFAULT_REGION, port: int = 0, strict: bool = True) -> None:
        self.region = region
        self._port = port
        self._strict = strict
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.gateway: AwsGateway | None = None

    def start(self) -> EmbeddedAws:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from metricbatch.emulator.local_cloudwatch import match_dimensions_exactly

        match_dimensions_exactly()  # as CloudWatch does: a roll-up's series is not its detail's
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.gateway = AwsGateway(DomainDispatcherApplication(create_backend_app), strict=self._strict)
        self._server = make_server(
            "127.0.0.1", self._port, self.gateway, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        logger.debug("embedded AWS listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "call start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ledger(self) -> Any:
        assert self.gateway is not None
        return self.gateway.ledger

    @property
    def faults(self) -> Any:
        assert self.gateway is not None
        return self.gateway.faults

    def env(self) -> dict[str, str]:
        """The standard variables a service needs to reach this endpoint (boto3 reads them itself)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    def client(self, service: str, **config: Any) -> Any:
        return boto3.session.Session().client(  # type: ignore[call-overload]
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            # Bounded timeouts: a stuck request is retried instead of holding a producer or the poller for 60 s.
            config=Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=config.pop("connect_timeout", 5),
                read_timeout=config.pop("read_timeout", 30),
                **config,
            ),
        )

    def reset(self) -> None:
        """Forget every queue and metric (moto's own reset endpoint)."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")).close()
        if self.gateway is not None:
            self.gateway.ledger.reset()
            self.gateway.faults.clear()
            self.gateway.sqs_metrics.clear()


class PipelineQueues:
    """The queue and DLQ of one pipeline, created with the environment's settings (the dev stack's by default)."""

    def __init__(self, sqs: Any, *, name: str = "metricbatch", settings: PipelineSettings | None = None) -> None:
        self.settings = settings or settings_for("dev")
        dlq = sqs.create_queue(
            QueueName=f"{name}-dlq",
            Attributes={"MessageRetentionPeriod": str(self.settings.dlq_retention_seconds)},
        )
        self.dlq_url: str = dlq["QueueUrl"]
        self.dlq_arn: str = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        import json

        attributes = {
            "VisibilityTimeout": str(self.settings.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(self.settings.queue_retention_seconds),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": str(self.settings.max_receive_count)}
            ),
        }
        # One queue per shard (settings.shards), as the stack deploys them; shard 0 is the pipeline's queue.
        names = [name] + [f"{name}-shard{index}" for index in range(1, self.settings.shards)]
        self.queue_urls: tuple[str, ...] = tuple(
            sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"] for queue_name in names
        )
        self.queue_url: str = self.queue_urls[0]
        self.queue_arn: str = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

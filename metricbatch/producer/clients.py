"""The boto3 clients a producer uses, made once per process (a forked child must not share the parent's sockets)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from botocore.config import Config

# Imports boto3 here, with the producer, on the importing thread: the sender's first round then makes a client
# without importing boto3 while the service is already sending (a burst at start-up), and no thread of this module
# is ever inside an import when the service forks.
from metricbatch.aws.session import aws_session

ClientFactory = Callable[[str], Any]


def _client_config() -> Config:
    return Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)


class StandardClients:
    """boto3 clients of one region (resolved once, ``AWS_REGION`` included), bounded timeouts, standard retries."""

    def __init__(self, region: str) -> None:
        self.region = region

    def __call__(self, service: str) -> Any:
        return aws_session(self.region).client(service, config=_client_config())


def standard_clients() -> StandardClients:
    """The region's clients; raises ConfigurationError naming AWS_REGION / AWS_DEFAULT_REGION when there is none."""
    return StandardClients(aws_session().region_name)


def default_client(service: str) -> Any:
    """A boto3 client from the standard settings (the region from AWS_REGION, AWS_DEFAULT_REGION or the profile)."""
    return aws_session().client(service, config=_client_config())


class ProcessClients:
    """Clients by service name: the ones given are used as they are, the rest made by ``factory`` in each process."""

    def __init__(self, given: dict[str, Any], factory: ClientFactory = default_client) -> None:
        self._given = {service: client for service, client in given.items() if client is not None}
        self._factory = factory
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        client = self._given.get(service) or self._made.get(service)
        if client is None:
            with self._lock:
                client = self._made.get(service)
                if client is None:
                    client = self._made[service] = self._factory(service)
        return client

    def hold_for_fork(self) -> None:
        """Before fork(): wait until no client is being made, so a child never inherits half-imported modules."""
        self._lock.acquire()

    def release_after_fork(self) -> None:
        """After fork(), in the parent."""
        self._lock.release()

    def forget_after_fork(self) -> None:
        """In a forked child: the clients made in the parent hold its connections; make new ones on next use."""
        self._made = {}
        self._lock = threading.Lock()

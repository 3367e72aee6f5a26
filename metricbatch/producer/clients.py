"""The boto3 clients a producer uses, made once per process (a forked child must not share the parent's sockets)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# Imported here, with the producer, on the importing thread: the sender's first round then makes a client without
# importing boto3 while the service is already sending (a burst at start-up), and no thread of this module is
# ever inside an import when the service forks.
import boto3
from botocore.config import Config

ClientFactory = Callable[[str], Any]


def default_client(service: str) -> Any:
    """A boto3 client from boto3's standard settings, with bounded timeouts and standard retries."""
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


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

"""From a producer's settings to what handles its metrics: the recorder of its mode.

``sqs`` and ``emf`` buffer and deliver from a thread (``BufferedRecorder``); ``memory`` and ``off`` handle each
metric on the caller's thread (``ImmediateRecorder``). A setting the mode needs and cannot find (a queue URL, an
AWS region) never raises in the caller: the mode becomes ``off``, the reason is logged once per process and shown
in ``stats()["mode_reason"]``, and ``flush()`` reports those metrics as not delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TextIO

from metricbatch.exceptions import ConfigurationError
from metricbatch.producer.buffered_recorder import BufferedRecorder
from metricbatch.producer.clients import ClientFactory, ProcessClients, default_client, standard_clients
from metricbatch.producer.config import EMF, MEMORY, NO_DESTINATION, SQS, ProducerConfig
from metricbatch.producer.counters import Counts
from metricbatch.producer.destinations import DeliveryChain, sqs_with_fallback
from metricbatch.producer.emf import EmfDestination
from metricbatch.producer.immediate_recorder import ImmediateRecorder
from metricbatch.producer.lifecycle import Closable
from metricbatch.producer.series import BufferedSeries

logger = logging.getLogger(__name__)


class Recorder(Protocol):
    """What a producer hands its validated series and values to."""

    def record(self, series: BufferedSeries, value: float, timestamp: datetime | float | None) -> bool: ...
    def wake(self) -> None: ...
    def count(self, counts: Counts) -> None: ...
    def stats(self) -> dict[str, int]: ...
    def flush(self, timeout: float | None = None) -> bool: ...
    def close(self, timeout: float | None = None) -> None: ...
    def end_for_signal(self, timeout: float | None = None) -> None: ...
    def resume_after_signal(self) -> None: ...
    def prepare_fork(self) -> None: ...
    def parent_after_fork(self) -> None: ...
    def reset_after_fork(self) -> None: ...

    @property
    def blocked(self) -> str: ...


def build_recorder(
    config: ProducerConfig,
    *,
    owner: Closable,
    clients: dict[str, Any],
    client_factory: ClientFactory | None,
    emf_stream: TextIO | None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[ProducerConfig, Recorder]:
    """The recorder of ``config.mode``, and the settings as they stand (``off`` with a reason if sqs cannot work)."""
    queue_url = config.queue_url
    if config.mode == SQS and queue_url:  # (the config chose off when there is no queue URL)
        config, factory = _client_factory(config, clients, client_factory)
        if factory is not None:
            process_clients = ProcessClients(clients, factory)
            chain = sqs_with_fallback(
                process_clients,
                config.shard_urls,
                max_message_bytes=config.max_message_bytes,
                attempts=config.send_attempts,
                fallback=config.fallback,
                sleep=sleep,
            )
            recorder = BufferedRecorder(config, chain, process_clients, owner=owner, clock=clock, monotonic=monotonic)
            return config, recorder
    if config.mode == EMF:
        chain = DeliveryChain([EmfDestination(emf_stream)])
        recorder = BufferedRecorder(
            config, chain, None, owner=owner, clock=clock, monotonic=monotonic, undeliverable="not writable as EMF"
        )
        return config, recorder
    announce(config)
    return config, ImmediateRecorder(capture=config.mode == MEMORY, undelivered=bool(config.mode_reason), clock=clock)


def _client_factory(
    config: ProducerConfig, clients: dict[str, Any], factory: ClientFactory | None
) -> tuple[ProducerConfig, ClientFactory | None]:
    """The factory of the clients not given. When the SQS client must be made and there is no region (or the
    profile is broken): mode off and no factory. (A given SQS client with a made fallback client needs the region
    only in an outage; ``default_client`` resolves it then.)"""
    if factory is not None or clients.get("sqs") is not None:
        return config, factory or default_client
    try:
        return config, standard_clients()
    except ConfigurationError as exc:  # said once (announce), never raised in the caller
        return config.turned_off(f"mode sqs cannot reach AWS, {exc}; metrics are validated and discarded"), None


_announced: set[str] = set()
_announced_lock = threading.Lock()


def announce(config: ProducerConfig) -> None:
    """Log why the mode was chosen for you, once per reason and process: a warning when nothing is configured at
    all, an error when a setting is there but unusable."""
    reason = config.mode_reason
    if reason:
        announce_once(reason, logging.WARNING if reason == NO_DESTINATION else logging.ERROR)


def announce_once(reason: str, level: int) -> None:
    """Log one line for this reason, once per process."""
    with _announced_lock:
        if reason in _announced:
            return
        _announced.add(reason)
    logger.log(level, "metricbatch: %s", reason)

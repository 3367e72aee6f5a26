"""Lambda's Runtime API for one sandbox, served on loopback: what awslambdaric talks to through AWS_LAMBDA_RUNTIME_API.

``GET /2018-06-01/runtime/invocation/next`` hands over the next event (blocking until there is one), with the
``Lambda-Runtime-*`` headers and ``Content-Type: application/json`` (without it the client never returns);
``POST .../invocation/{id}/response`` and ``.../invocation/{id}/error`` answer it; ``POST .../init/error`` reports a
runtime that could not start. Lambda freezes the sandbox when its runtime asks for the next event: ``idle`` says so.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_POLL_SECONDS = 0.2  # how often a blocked GET /next checks that the server is still running


@dataclass(frozen=True)
class Invocation:
    """One event handed to the runtime."""

    request_id: str
    body: bytes
    deadline_ms: int  # epoch milliseconds, as Lambda-Runtime-Deadline-Ms
    function_arn: str
    trace_id: str


@dataclass(frozen=True)
class RuntimeReply:
    """What the runtime posted for an invocation (or for its init)."""

    kind: str  # "response", "error" or "init-error"
    request_id: str | None
    body: bytes
    error_type: str | None = None

    def error_summary(self) -> str:
        """``errorType: errorMessage`` of an error reply (the body awslambdaric posts)."""
        try:
            payload: Any = json.loads(self.body or b"{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        error_type = payload.get("errorType") or self.error_type or "Unknown"
        return f"{error_type}: {payload.get('errorMessage', self.body[:300].decode(errors='replace'))}"


class RuntimeApi:
    """The Runtime API of one sandbox: a loopback HTTP server and the queues between it and the runner."""

    def __init__(self) -> None:
        self.events: queue.Queue[Invocation] = queue.Queue()
        self.replies: queue.Queue[RuntimeReply] = queue.Queue()
        self.idle = threading.Event()  # the runtime waits in GET /next with nothing to hand over
        self.next_requests = 0
        self._running = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path != f"{API_PREFIX}/invocation/next":
                    self._reply(404, b"{}")
                    return
                invocation = api._next()
                if invocation is None:
                    self._reply(503, b'{"errorMessage": "the sandbox is shutting down"}')
                    return
                self._reply(
                    200,
                    invocation.body,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                        "Lambda-Runtime-Trace-Id": invocation.trace_id,
                    },
                )

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(API_PREFIX).strip("/").split("/")
                error_type = self.headers.get(ERROR_TYPE_HEADER)
                if parts == ["init", "error"]:
                    api.replies.put(RuntimeReply("init-error", None, body, error_type))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    api.replies.put(RuntimeReply(parts[2], parts[1], body, error_type))
                else:
                    self._reply(404, b"{}")
                    return
                self._reply(202, b'{"status": "OK"}')

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self._send(status, body, headers)
                except OSError:  # the sandbox was killed while its runtime waited for an event
                    logger.debug("runtime api: the runtime is gone")

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("runtime api: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port``, the value of AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self._server.server_port}"

    def start(self) -> RuntimeApi:
        self._running.set()
        self._thread = start_daemon(self._server.serve_forever, f"runtime-api-{self.address}")
        return self

    def stop(self) -> None:
        self._running.clear()
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Invocation | None:
        self.next_requests += 1
        while self._running.is_set():
            try:
                invocation = self.events.get_nowait()
            except queue.Empty:
                self.idle.set()
                try:
                    invocation = self.events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
            self.idle.clear()
            return invocation
        return None

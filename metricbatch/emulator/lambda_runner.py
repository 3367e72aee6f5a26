"""A local Lambda: the deployed package run by AWS's runtime interface client, one process per sandbox.

What Lambda does with a function, done here on one machine for a function read from a cloud assembly
(``emulator/assembly.py``): each sandbox is a fresh interpreter with the package as its task root, started by
awslambdaric with the template's ``Handler`` and environment and a Runtime API of its own (``runtime_api.py``).
The first invocation of a sandbox is a cold start; later ones reuse it. Between invocations the sandbox is frozen
(SIGSTOP once its runtime asks for the next event, SIGCONT when there is one). An invocation past its deadline
kills the sandbox (SIGKILL); the next one starts a new sandbox. An init error (bad handler string, missing module)
comes back through ``/runtime/init/error`` and is raised as FunctionInitError naming the handler. Up to
``max_concurrency`` sandboxes run at once.

The function's stdout and stderr are its log stream, read as CloudWatch Logs reads it: EMF documents become
metrics (``emf_sink``), other lines are kept (``logs``) and those at WARNING or above are shown (``log_sink``).
Lambda's own START / END / REPORT lines are added as Lambda writes them.

The Lambda package never imports this module: it stands in for AWS.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from metricbatch.emulator.runtime_api import Invocation, RuntimeApi, RuntimeReply
from metricbatch.exceptions import ConfigurationError, FunctionInitError, FunctionInvocationError, FunctionTimeoutError
from metricbatch.limits import LAMBDA_INIT_TIMEOUT_SECONDS
from metricbatch.threads import start_daemon

logger = logging.getLogger(__name__)

RUNTIME_CLIENT_DISTRIBUTION: Final = "awslambdaric"
BOOTSTRAP: Final = Path(__file__).with_name("lambda_bootstrap.py")
ACCOUNT_ID: Final = "123456789012"  # the account id of moto's and the local stand-ins' ARNs
LOG_LINES_KEPT: Final = 20_000  # the log stream kept in memory, newest last
_SYNC_MARK: Final = "\x00metricbatch-log-sync "  # written into the log pipe after a reply, so EMF lines are read first
_FREEZE_WAIT_SECONDS: Final = 5.0  # how long to wait for the runtime's next GET /next before freezing anyway
_SHOWN_LEVELS: Final = frozenset({"WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"})


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What a sandbox runs: the package, the handler, the environment and the limits (from the template)."""

    name: str
    task_root: Path
    handler: str
    environment: dict[str, str]  # the template's variables (resolved) plus how this machine reaches the local AWS
    timeout_seconds: float
    memory_mb: int
    region: str
    runtime: str = "python3.13"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"


@dataclass
class SandboxStats:
    """What the function's sandboxes did (read after a run; tests and the demo report them)."""

    cold_starts: int = 0
    invocations: int = 0
    timeouts: int = 0
    init_errors: int = 0
    freezes: int = 0
    init_seconds: list[float] = field(default_factory=list)
    max_memory_used_mb: int = 0
    pids: list[int] = field(default_factory=list)
    peak_concurrency: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a counter (the sandboxes update them from their own threads)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)


def runtime_dir(target: Path) -> Path:
    """A folder holding awslambdaric and its own dependencies, nothing else (Lambda's ``/var/runtime``).

    Made of links into the installed distributions, so the sandbox finds the runtime client without the
    developer's site-packages, where boto3 and everything the package might lack also live.
    """
    target.mkdir(parents=True, exist_ok=True)
    pending, seen = [RUNTIME_CLIENT_DISTRIBUTION], set()
    while pending:
        name = pending.pop()
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ConfigurationError(
                f"{name} is not installed: the local Lambda runner needs AWS's runtime interface client "
                "(pip install 'metricbatch[local]', or the pins in requirements-dev.txt)"
            ) from exc
        seen.add(name)
        for path in distribution.files or []:
            top = path.parts[0]
            if top == ".." or top.endswith((".dist-info", ".data")):
                continue
            source = Path(str(distribution.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
        for requirement in distribution.requires or []:
            if "extra ==" in requirement:
                continue
            match = re.match(r"[A-Za-z0-9._-]+", requirement)
            if match and match[0] not in seen:
                pending.append(match[0])
    return target


class LogStream:
    """The function's log stream: lines kept (bounded), EMF documents extracted, warnings and errors shown."""

    def __init__(
        self,
        *,
        emf_sink: Callable[[dict[str, Any]], None] | None = None,
        log_sink: Callable[[str], None] | None = None,
    ) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self.emf_documents = 0
        self._emf_sink = emf_sink
        self._log_sink = log_sink if log_sink is not None else _show
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        if not line.strip():
            return
        with self._lock:
            self.lines.append(line)
        document = _json_object(line) if line.startswith("{") else None
        if document is not None and "_aws" in document:
            self.emf_documents += 1
            if self._emf_sink is not None:
                try:
                    self._emf_sink(document)
                except Exception:
                    logger.exception("cannot extract an EMF document")
            return
        if document is not None:
            if str(document.get("level", "")).upper() in _SHOWN_LEVELS:
                self._log_sink(line)
        elif not line.startswith(("START ", "END ", "REPORT ")) and _looks_like_a_problem(line):
            self._log_sink(line)

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records kept (Powertools' structured lines), EMF documents excluded."""
        with self._lock:
            lines = list(self.lines)
        documents = (_json_object(line) for line in lines if line.startswith("{"))
        return [d for d in documents if d is not None and "_aws" not in d]


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _looks_like_a_problem(line: str) -> bool:
    # awslambdaric's own lines ("[ERROR] Runtime.ImportModuleError: ...", tracebacks) and Lambda's timeout notice
    return any(mark in line for mark in ("[ERROR]", "[WARNING]", "Traceback", "Task timed out", "Error:"))


def _show(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Sandbox:
    """One execution environment: a runtime process, its Runtime API, frozen between invocations."""

    def __init__(self, spec: FunctionSpec, runtime_path: Path, logs: LogStream, stats: SandboxStats) -> None:
        self.spec = spec
        self._runtime_path = runtime_path
        self._logs = logs
        self._stats = stats
        self._api: RuntimeApi | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_write_fd: int | None = None
        self._reader: threading.Thread | None = None
        self._synced = threading.Condition()
        self._sync_seen: set[str] = set()
        self.frozen = False
        self.log_stream_name = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> float:
        """Cold start: a new runtime process; returns the init duration once the runtime asks for its first event.

        Raises FunctionInitError (the runtime's /runtime/init/error, or its exit) naming the handler.
        """
        self.stop()
        started = time.monotonic()
        self._api = RuntimeApi().start()
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        read_fd, write_fd = os.pipe()
        self._log_write_fd = write_fd
        environment = {
            **self.spec.environment,
            **_reserved_environment(self.spec, self._api.address, self.log_stream_name),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-u", str(BOOTSTRAP), str(self.spec.task_root), str(self._runtime_path),
             self.spec.handler],
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            env=environment,
            cwd=self.spec.task_root,
            # Its own process group: a Ctrl-C in the terminal is the runner's to handle, and if the runner dies, the
            # kernel hangs up the orphaned group (a frozen sandbox included) instead of leaving it stopped.
            process_group=0,
        )  # fmt: skip
        reader = os.fdopen(read_fd, "rb", buffering=0)
        self._reader = start_daemon(lambda: self._read_logs(reader), f"lambda-logs-{self._process.pid}")
        self._stats.count("cold_starts")
        self._stats.pids.append(self._process.pid)
        init_limit = started + LAMBDA_INIT_TIMEOUT_SECONDS + self.spec.timeout_seconds
        while not self._api.idle.wait(0.05):
            reply = _poll(self._api)
            if reply is not None and reply.kind == "init-error":
                self._init_failed(reply.error_summary())
            if self._process.poll() is not None:
                self._init_failed(f"Runtime.ExitError: the runtime exited with status {self._process.returncode}")
            if time.monotonic() > init_limit:
                self._init_failed(f"Runtime.InitTimeout: no request for an event within {init_limit - started:.0f} s")
        init_seconds = time.monotonic() - started
        self._stats.init_seconds.append(init_seconds)
        return init_seconds

    def _init_failed(self, summary: str) -> None:
        self._sync_logs()
        self._stats.count("init_errors")
        self.stop()
        raise FunctionInitError(
            f"the function {self.spec.name} cannot start with Handler {self.spec.handler!r} "
            f"(package {self.spec.task_root}): {summary}",
            error_type=summary.split(":", 1)[0],
        )

    def stop(self) -> None:
        """Kill the runtime process (frozen or not) and close its Runtime API."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
        if self._log_write_fd is not None:
            os.close(self._log_write_fd)  # the reader sees the end of the stream
            self._log_write_fd = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._api is not None:
            self._api.stop()
            self._api = None
        self.frozen = False

    # -- one invocation ---------------------------------------------------------------------------------------------
    def invoke(self, event: dict[str, Any], *, request_id: str) -> Any:
        """Run one invocation; the handler's response, or FunctionInvocationError / FunctionTimeoutError."""
        init_seconds: float | None = None
        if not self.alive or self._api is None:
            init_seconds = self.start()
        api = self._api
        assert api is not None and self._process is not None
        self._emit(f"START RequestId: {request_id} Version: $LATEST")
        started = time.monotonic()
        deadline = time.time() + self.spec.timeout_seconds
        api.events.put(
            Invocation(
                request_id=request_id,
                body=json.dumps(event).encode(),
                deadline_ms=int(deadline * 1000),
                function_arn=self.spec.arn,
                trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};"
                "Sampled=0",
            )
        )
        self._thaw()
        self._stats.count("invocations")
        reply = self._wait_reply(api, request_id, started + self.spec.timeout_seconds)
        duration_ms = (time.monotonic() - started) * 1000
        if reply is None:  # past the deadline, or the process died: the sandbox is gone
            timed_out = self._process is not None and self._process.poll() is None
            self.stop()
            if timed_out:
                self._stats.count("timeouts")
                self._emit(f"{_timestamp()} {request_id} Task timed out after {self.spec.timeout_seconds:.2f} seconds")
                self._report(request_id, duration_ms, init_seconds)
                raise FunctionTimeoutError(
                    f"{self.spec.name}: invocation {request_id} timed out after {self.spec.timeout_seconds:.2f} s; "
                    "the sandbox was killed",
                    error_type="Sandbox.Timedout",
                )
            self._report(request_id, duration_ms, init_seconds)
            raise FunctionInvocationError(
                f"{self.spec.name}: the runtime exited during invocation {request_id}", error_type="Runtime.ExitError"
            )
        self._sync_logs()
        self._report(request_id, duration_ms, init_seconds)
        self.freeze()
        if reply.kind == "error":
            summary = reply.error_summary()
            raise FunctionInvocationError(f"{self.spec.name}: {summary}", error_type=summary.split(":", 1)[0])
        return json.loads(reply.body) if reply.body else None

    def _wait_reply(self, api: RuntimeApi, request_id: str, deadline: float) -> RuntimeReply | None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._process is None or self._process.poll() is not None:
                return None
            reply = _poll(api, timeout=min(remaining, 0.1))
            if reply is not None and reply.request_id == request_id:
                return reply

    def _thaw(self) -> None:
        if self.frozen and self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)
            self.frozen = False

    def freeze(self) -> None:
        """SIGSTOP the sandbox once its runtime asks for the next event (as Lambda freezes it then)."""
        if self._api is None or self.frozen:
            return
        self._api.idle.wait(_FREEZE_WAIT_SECONDS)
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGSTOP)
            self.frozen = True
            self._stats.count("freezes")

    # -- the log stream ---------------------------------------------------------------------------------------------
    def _read_logs(self, stream: IO[bytes]) -> None:
        buffered = b""
        while chunk := stream.read(65536):
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for raw in lines:
                self._log_line(raw.decode(errors="replace"))
        if buffered:
            self._log_line(buffered.decode(errors="replace"))
        stream.close()

    def _log_line(self, line: str) -> None:
        if line.startswith(_SYNC_MARK):
            with self._synced:
                self._sync_seen.add(line[len(_SYNC_MARK) :])
                self._synced.notify_all()
            return
        # awslambdaric writes an error's lines joined by "\r" (one CloudWatch Logs event)
        self._logs.write(line.replace("\r", "\n"))

    def _emit(self, line: str) -> None:
        self._logs.write(line)

    def _sync_logs(self, timeout: float = 5.0) -> None:
        """Wait until everything the function wrote so far has been read (its EMF lines extracted)."""
        if self._log_write_fd is None:
            return
        token = uuid.uuid4().hex
        os.write(self._log_write_fd, f"{_SYNC_MARK}{token}\n".encode())
        with self._synced:
            self._synced.wait_for(lambda: token in self._sync_seen, timeout)
            self._sync_seen.discard(token)

    def _report(self, request_id: str, duration_ms: float, init_seconds: float | None) -> None:
        memory = _max_memory_mb(self._process.pid) if self._process is not None else 0
        self._stats.max_memory_used_mb = max(self._stats.max_memory_used_mb, memory)
        if memory > self.spec.memory_mb:
            logger.warning(
                "%s used %d MB, over its MemorySize of %d MB (Lambda would stop it)", self.spec.name, memory,
                self.spec.memory_mb,
            )  # fmt: skip
        init = f"\tInit Duration: {init_seconds * 1000:.2f} ms" if init_seconds is not None else ""
        self._emit(f"END RequestId: {request_id}")
        self._emit(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {int(duration_ms) + 1} "
            f"ms\tMemory Size: {self.spec.memory_mb} MB\tMax Memory Used: {memory} MB{init}"
        )


def _poll(api: RuntimeApi, timeout: float = 0.0) -> RuntimeReply | None:
    import queue

    try:
        return api.replies.get(timeout=timeout) if timeout > 0 else api.replies.get_nowait()
    except queue.Empty:
        return None


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


def _max_memory_mb(pid: int) -> int:
    """Peak resident memory of a process (VmHWM), as REPORT's Max Memory Used; 0 where /proc is not available."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)
    return int(match[1]) // 1024 if match else 0


def _reserved_environment(spec: FunctionSpec, runtime_api: str, log_stream: str) -> dict[str, str]:
    """The variables Lambda sets in every sandbox (they win over the function's own)."""
    return {
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "LAMBDA_TASK_ROOT": str(spec.task_root),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


class LocalLambdaFunction:
    """A function run as Lambda runs it, callable as ``function(event, context)`` by the SQS poller.

    Sandboxes are started on demand (a cold start when every running one is busy), reused, frozen between
    invocations, and killed on timeout; at most ``max_concurrency`` run at once. ``stop()`` ends them all.
    """

    runs_isolated = True  # the poller neither serializes nor captures stdout for it: each sandbox is a process

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        max_concurrency: int = 1,
        emf_sink: Callable[[dict[str, Any]], None] | None = None,
        log_sink: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.max_concurrency = max_concurrency
        self.logs = LogStream(emf_sink=emf_sink, log_sink=log_sink)
        self.stats = SandboxStats()
        self._scratch = Path(tempfile.mkdtemp(prefix="metricbatch-lambda-"))
        self._runtime_path = runtime_dir(self._scratch / "runtime")
        self._idle: list[Sandbox] = []
        self._sandboxes: list[Sandbox] = []
        self._busy = 0
        self._available = threading.Condition()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4())
        with self._sandbox() as sandbox:
            return sandbox.invoke(event, request_id=request_id)

    def warm(self) -> float:
        """Start one sandbox now (Lambda would on the first event); its init duration. Raises FunctionInitError."""
        with self._sandbox() as sandbox:
            if sandbox.alive:
                return 0.0
            init_seconds = sandbox.start()
            sandbox.freeze()  # as Lambda does once the runtime asks for its first event
            return init_seconds

    @property
    def sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes)

    def stop(self) -> None:
        with self._available:
            sandboxes, self._sandboxes, self._idle = self._sandboxes, [], []
        for sandbox in sandboxes:
            sandbox.stop()
        shutil.rmtree(self._scratch, ignore_errors=True)

    @contextlib.contextmanager
    def _sandbox(self) -> Iterator[Sandbox]:
        sandbox = self._acquire()
        try:
            yield sandbox
        finally:
            self._release(sandbox)

    def _acquire(self) -> Sandbox:
        with self._available:
            while True:
                if self._idle:
                    sandbox = self._idle.pop()  # the most recently used: warm
                    break
                if len(self._sandboxes) < self.max_concurrency:
                    sandbox = Sandbox(self.spec, self._runtime_path, self.logs, self.stats)
                    self._sandboxes.append(sandbox)
                    break
                self._available.wait()
            self._busy += 1
            self.stats.peak_concurrency = max(self.stats.peak_concurrency, self._busy)
            return sandbox

    def _release(self, sandbox: Sandbox) -> None:
        with self._available:
            self._busy -= 1
            if sandbox in self._sandboxes:
                self._idle.append(sandbox)
            self._available.notify()


def iter_report_lines(lines: Iterator[str] | list[str]) -> Iterator[dict[str, str]]:
    """The fields of Lambda's REPORT lines in a log stream (``Duration``, ``Init Duration``, ...)."""
    for line in lines:
        if line.startswith("REPORT "):
            fields = dict(part.split(": ", 1) for part in line.split("\t") if ": " in part)
            yield fields

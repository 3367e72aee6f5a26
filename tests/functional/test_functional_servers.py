"""The servers and pools the README names, run for real against the embedded AWS: no metric of any worker is lost.

Each case starts the real server (gunicorn, uvicorn, a Celery prefork worker on the filesystem broker: no broker
server) as a process of its own, with an application that calls ``send_metric`` per request or task with its pid as
a dimension and no ``flush()`` anywhere, and stops it as production would. Every worker's samples are then counted
on the queue and compared, exactly, with what the workers did (responses received per pid, or a task tally file).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from functional_support import unique_namespace
from server_support import child_env, free_port, samples_on_queue, wait_for

from metricbatch.emulator.local_pipeline import LocalPipeline

STOP_TIMEOUT = 60

WSGI_APP = """
import os
from metricbatch import send_metric


def app(environ, start_response):
    pid = str(os.getpid())
    if environ["PATH_INFO"] != "/health":  # the readiness probe sends nothing
        send_metric("Requests", 1.0, unit="Count", dimensions={"Pid": pid})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [pid.encode()]
"""

ASGI_APP = """
import os
from metricbatch import send_metric


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    pid = str(os.getpid())
    if scope["path"] != "/health":  # the readiness probe sends nothing
        send_metric("Requests", 1.0, unit="Count", dimensions={"Pid": pid})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": pid.encode()})
"""

CELERY_APP = """
import os
from celery import Celery
from metricbatch import send_metric

HERE = os.path.dirname(os.path.abspath(__file__))
BROKER = os.path.join(HERE, "broker")
os.makedirs(BROKER, exist_ok=True)
app = Celery("tasks", broker="filesystem://")
app.conf.update(
    broker_transport_options={"data_folder_in": BROKER, "data_folder_out": BROKER, "polling_interval": 0.05},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
TALLY = os.open(os.path.join(HERE, "tally"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)


@app.task
def work(i):
    pid = str(os.getpid())
    send_metric("Tasks", 1.0, unit="Count", dimensions={"Pid": pid})
    os.write(TALLY, f"{pid}\\n".encode())  # one line per task done, per pid: what the queue must hold
"""


def _get(port: int, count: int) -> collections.Counter[str]:
    """``count`` requests, one connection each; the pid that served each, counted."""
    served: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            served[response.read().decode()] += 1
    return served


def _wait_listening(port: int, server: subprocess.Popen[str]) -> None:
    def up() -> bool:
        assert server.poll() is None, server.communicate()[0][-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return True
        except OSError:
            return False

    wait_for(up, 30, f"the server on port {port}")


def _serve(tmp_path: Path, env: dict[str, str], module: str, source: str, argv: list[str]) -> subprocess.Popen[str]:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    return subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{env['PYTHONPATH']}{os.pathsep}{tmp_path}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(server: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> str:
    server.send_signal(how)
    output, _ = server.communicate(timeout=STOP_TIMEOUT)
    return output


HTTP_SERVERS = {
    # --preload: the app (and metricbatch) is imported in the master, then the workers are forked
    "gunicorn-sync-preload": ["gunicorn", "--preload", "-w", "2", "-k", "sync"],
    # recycled workers: each ends after 60 requests and a new one is forked, all under load
    "gunicorn-max-requests": ["gunicorn", "--preload", "-w", "2", "-k", "sync", "--max-requests", "60"],
    "gunicorn-gthread": ["gunicorn", "-w", "2", "-k", "gthread", "--threads", "4"],
}


@pytest.mark.parametrize("server_kind", list(HTTP_SERVERS))
def test_gunicorn_workers_deliver_every_request_metric(
    clean_pipeline: LocalPipeline, tmp_path: Path, server_kind: str
) -> None:
    namespace = unique_namespace("Gunicorn")
    port = free_port()
    argv = [*HTTP_SERVERS[server_kind], "-b", f"127.0.0.1:{port}", "--graceful-timeout", "10", "wsgi_app:app"]
    # GIVEN gunicorn serving an app that sends one metric per request and never flushes
    server = _serve(tmp_path, child_env(clean_pipeline, namespace), "wsgi_app", WSGI_APP, argv)
    try:
        _wait_listening(port, server)
        # WHEN it serves 300 requests and is stopped with SIGTERM, as a supervisor does
        served = _get(port, 300)
    finally:
        output = _stop(server)
    assert server.returncode == 0, output[-3000:]
    if server_kind == "gunicorn-max-requests":
        assert len(served) >= 4, served  # workers really were recycled under load
    # THEN every worker's metrics are on the queue, exactly: one per request it served
    assert samples_on_queue(clean_pipeline, namespace, "Requests", "Pid") == served


def test_uvicorn_workers_deliver_every_request_metric(clean_pipeline: LocalPipeline, tmp_path: Path) -> None:
    namespace = unique_namespace("Uvicorn")
    port = free_port()
    argv = ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    # GIVEN uvicorn with 2 worker processes serving an ASGI app that sends one metric per request
    server = _serve(tmp_path, child_env(clean_pipeline, namespace), "asgi_app", ASGI_APP, [*argv, "asgi_app:app"])
    try:
        _wait_listening(port, server)
        # WHEN it serves 300 requests and is stopped with SIGTERM
        served = _get(port, 300)
    finally:
        output = _stop(server)
    assert server.returncode == 0, output[-3000:]
    # THEN each worker's metrics are on the queue, exactly
    assert samples_on_queue(clean_pipeline, namespace, "Requests", "Pid") == served


CELERY_CASES = {
    # children recycled after 50 tasks each: each ends with os._exit() in billiard's pool worker
    "max-tasks-per-child": (["--max-tasks-per-child", "50"], 300, "sigterm"),
    # stopped by a broadcast, as `celery control shutdown` does
    "control-shutdown": ([], 300, "control"),
    # stopped by SIGTERM (warm shutdown) right after the last task
    "sigterm": ([], 300, "sigterm"),
    # a child replaced after every task for its memory (1 KiB limit)
    "max-memory-per-child": (["--max-memory-per-child", "1"], 6, "sigterm"),
}


@pytest.mark.parametrize("case", list(CELERY_CASES))
def test_celery_prefork_children_deliver_every_task_metric(
    clean_pipeline: LocalPipeline, tmp_path: Path, case: str
) -> None:
    options, tasks, stop = CELERY_CASES[case]
    namespace = unique_namespace("Celery")
    env = child_env(clean_pipeline, namespace)
    argv = ["celery", "-A", "tasks", "worker", "-P", "prefork", "-c", "2", "-l", "warning"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", *options]
    # GIVEN a Celery prefork worker whose task sends one metric and never flushes
    worker = _serve(tmp_path, env, "tasks", CELERY_APP, argv)
    tally = tmp_path / "tally"
    try:
        # WHEN it runs the tasks and is stopped as this case says
        client_env = {**env, "PYTHONPATH": f"{env['PYTHONPATH']}{os.pathsep}{tmp_path}"}
        enqueue = f"from tasks import work\nfor i in range({tasks}): work.delay(i)"
        subprocess.run([sys.executable, "-c", enqueue], cwd=tmp_path, env=client_env, check=True, timeout=60)
        wait_for(lambda: tally.exists() and len(tally.read_text().split()) >= tasks, 60, f"{tasks} tasks done")
        if stop == "control":
            shutdown = "from tasks import app\napp.control.shutdown()"
            subprocess.run([sys.executable, "-c", shutdown], cwd=tmp_path, env=client_env, check=True, timeout=60)
            output, _ = worker.communicate(timeout=STOP_TIMEOUT)
        else:
            output = _stop(worker)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, output[-3000:]
    done = collections.Counter(tally.read_text().split())
    if case in ("max-tasks-per-child", "max-memory-per-child"):
        assert len(done) >= 3, done  # children really were recycled
    # THEN every child's metrics are on the queue, exactly one per task it ran
    assert samples_on_queue(clean_pipeline, namespace, "Tasks", "Pid") == done


def test_a_billiard_process_delivers_what_it_sent(clean_pipeline: LocalPipeline, tmp_path: Path) -> None:
    namespace = unique_namespace("Billiard")
    script = tmp_path / "service.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, billiard
            from metricbatch import send_metric

            def target():
                for _ in range(100):
                    send_metric("Tasks", 1.0, unit="Count", dimensions={"Pid": str(os.getpid())})

            if __name__ == "__main__":
                for method in ("fork", "spawn", "forkserver"):
                    process = billiard.get_context(method).Process(target=target)
                    process.start()
                    process.join()
                    assert process.exitcode == 0
                    print(process.pid, flush=True)
            """
        )
    )
    # GIVEN billiard processes (fork, spawn, forkserver) whose target sends 100 metrics and returns
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=child_env(clean_pipeline, namespace),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # THEN each one's 100 are on the queue
    pids = done.stdout.split()
    assert samples_on_queue(clean_pipeline, namespace, "Tasks", "Pid") == dict.fromkeys(pids, 100)
    assert time.monotonic() - started < 30

"""The Lambda handler module: no side effects on import; the sandbox's state is built by the first invocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_handler_creates_no_logger_and_touches_no_logging_configuration() -> None:
    probe = (
        "import json, logging; import lambdas.batcher.handler; "
        "library = logging.getLogger('metricbatch'); "
        "print(json.dumps({'loggers': sorted(logging.root.manager.loggerDict), "
        "'library_handlers': len(library.handlers), 'propagate': library.propagate, "
        "'root_handlers': len(logging.root.handlers)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "probe-service"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    state = json.loads(done.stdout.splitlines()[-1])
    # Powertools' Logger() names its logger after the service: it must not exist before the first invocation
    assert "probe-service" not in state["loggers"]
    assert state["library_handlers"] == 0 and state["propagate"] is True
    assert state["root_handlers"] == 0
    assert done.stdout.strip().count("\n") == 0  # nothing printed on import

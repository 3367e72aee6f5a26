"""Starts AWS's runtime interface client (awslambdaric) in a sandbox process; run by the local Lambda runner.

Usage: ``python -I -S -B -u lambda_bootstrap.py TASK_ROOT RUNTIME_DIR HANDLER``

``-I -S`` leave the standard library alone on ``sys.path`` (no site-packages, no checkout, no script folder). The
function's package (TASK_ROOT, Lambda's ``/var/task``) goes first, the runtime's folder (RUNTIME_DIR, Lambda's
``/var/runtime``: awslambdaric and its own dependencies, nothing else) last, so the package's modules win as in
Lambda and nothing the package lacks is found in a developer's virtualenv. Standard library only, by design.
"""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str]) -> None:
    task_root, runtime_dir, handler = argv[1:4]
    sys.path[:] = [task_root, *sys.path, runtime_dir]
    os.chdir(task_root)  # Lambda starts the runtime in /var/task
    sys.argv = ["awslambdaric", handler]
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)

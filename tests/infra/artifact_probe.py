"""Runs the batcher from its deployment package alone, as the Lambda runtime would; started by test_infra_artifact.

Usage: ``python -I -S -B artifact_probe.py PACKAGE_DIR HANDLER INVOCATIONS_JSON RESULT_JSON``

``-I -S`` leave only the standard library on ``sys.path`` (no site-packages, no checkout, no script folder);
the probe puts the package folder in front, imports the handler named as in the function's ``Handler`` property,
invokes it once per event with a Lambda-like context, and writes what happened (responses, errors, and any module
loaded from outside the package and the standard library) to RESULT_JSON. Standard library only, by design.
"""

from __future__ import annotations

import importlib
import json
import sys
import sysconfig
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class ProbeContext:
    """The parts of Lambda's context object a handler uses, with a real deadline."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self.function_name = "metricbatch-batcher-probe"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "probe"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _within(path: str, roots: list[Path]) -> bool:
    resolved = Path(path).resolve()
    return "site-packages" not in resolved.parts and any(resolved == r or resolved.is_relative_to(r) for r in roots)


def _standard_library() -> list[Path]:
    version = f"{sys.version_info.major}{sys.version_info.minor}"
    zipped = Path(sys.base_prefix) / "lib" / f"python{version}.zip"  # on sys.path whether it exists or not
    return [zipped, *(Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib"))]


def main(argv: list[str]) -> int:
    package, handler_spec, invocations_file, result_file = argv[1:5]
    stdlib = _standard_library()
    outside = [p for p in sys.path if not _within(p, stdlib)]
    result: dict[str, Any] = {"sys_path_outside_stdlib": outside, "responses": [], "errors": []}
    sys.path.insert(0, package)
    roots = [Path(package).resolve(), *stdlib]
    module_name, attribute = handler_spec.rsplit(".", 1)
    try:
        handler = getattr(importlib.import_module(module_name.replace("/", ".")), attribute)
        for invocation in json.loads(Path(invocations_file).read_text()):
            try:
                context = ProbeContext(timeout_seconds=invocation["timeout_seconds"])
                result["responses"].append(handler(invocation["event"], context))
            except Exception as exc:
                result["errors"].append({"type": type(exc).__name__, "message": str(exc)})
                result["responses"].append(None)
    except Exception as exc:
        result["import_error"] = {"type": type(exc).__name__, "message": str(exc), "trace": traceback.format_exc()}
    result["modules_from_elsewhere"] = sorted(
        f"{name}: {module.__file__}"
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
        and not _within(str(module.__file__), roots)
        and Path(str(module.__file__)).resolve() != Path(__file__).resolve()  # the probe itself
    )
    boto3 = sys.modules.get("boto3")
    result["boto3_file"] = getattr(boto3, "__file__", None)
    Path(result_file).write_text(json.dumps(result))
    return 1 if "import_error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

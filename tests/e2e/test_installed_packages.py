"""The packages as users install them: the built wheel in a fresh venv and the packed npm tarball in a Node app, both
outside the repository (`make package-env` makes them; METRICBATCH_PACKAGE_ENV says where). The README's quick-start
snippets run there against the embedded AWS, and every sample is read back from CloudWatch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import metricbatch
from metricbatch.emulator.local_pipeline import LocalPipeline

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
NODE_PACKAGE = REPO / "clients" / "node"
TSC = NODE_PACKAGE / "node_modules" / ".bin" / "tsc"
TIMEOUT = 120


@pytest.fixture(scope="module")
def package_env() -> Path:
    where = os.environ.get("METRICBATCH_PACKAGE_ENV")
    if not where:
        pytest.skip("no installed packages: `make test` runs `make package-env` first (METRICBATCH_PACKAGE_ENV)")
    root = Path(where)
    if not (root / "venv" / "bin" / "python").exists() or not (root / "node-app" / "node_modules").exists():
        pytest.fail(f"{root} is not a package environment: run `make package-env`")
    assert REPO not in root.resolve().parents, "the packages must be tried outside the repository"
    return root


@pytest.fixture(scope="module")
def pipeline() -> Iterator[LocalPipeline]:
    with LocalPipeline(queue_name=f"installed-{time.monotonic_ns()}") as p:
        yield p


def quick_start(kind: str) -> str:
    """The README's quick-start snippet of this kind (the code block after `<!-- quick-start: kind -->`)."""
    match = re.search(rf"<!-- quick-start: {kind} -->\n```\w+\n(.*?)```", README, re.S)
    assert match, f"README has no quick-start snippet for {kind}"
    return match.group(1)


def clean_env(pipeline: LocalPipeline, namespace: str) -> dict[str, str]:
    """What a user's process has: the pipeline's exports, no PYTHONPATH into this repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "METRICBATCH_", "PYTHON", "NODE_"))}
    env.update(pipeline.env(), METRICBATCH_NAMESPACE=namespace)
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def assert_quick_start_delivered(pipeline: LocalPipeline, namespace: str, runs: int = 1) -> None:
    """Every sample the quick start sends, read back from CloudWatch exactly."""
    pipeline.drain()
    cart = {"Service": "cart"}
    assert pipeline.read_series(namespace, "Orders", cart) == (float(runs), float(runs)), pipeline.diagnostics()
    assert pipeline.read_series(namespace, "Checkout.Total.Success", cart) == (float(runs), float(runs))
    assert pipeline.read_series(namespace, "Checkout.Total.Error", cart) == (0.0, float(runs))
    assert pipeline.read_series(namespace, "Checkout.Total", cart)[1] == float(runs)
    assert pipeline.dlq_depth() == 0


# -- Python: the wheel -------------------------------------------------------------------------------------------
def test_the_python_quick_start_runs_from_the_wheel(package_env: Path, pipeline: LocalPipeline, tmp_path: Path) -> None:
    python = str(package_env / "venv" / "bin" / "python")
    namespace = f"Installed/Python{time.monotonic_ns()}"
    (tmp_path / "service.py").write_text(
        quick_start("python") + "import metricbatch, sys\nprint(metricbatch.__file__)\n"
    )
    result = run([python, "service.py"], tmp_path, clean_env(pipeline, namespace))
    assert str(package_env / "venv") in result.stdout, "the installed wheel, not this repository, was imported"
    assert_quick_start_delivered(pipeline, namespace)


def test_the_wheel_carries_its_version_license_and_types(package_env: Path, tmp_path: Path) -> None:
    venv = package_env / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "METRICBATCH_"))}
    wheels = list((package_env / "dist").glob("metricbatch-*.whl"))
    assert len(wheels) == 1
    version = wheels[0].name.split("-")[1]
    # one version everywhere: the wheel, the package, the command line, this repository, the npm package
    assert version == metricbatch.__version__
    assert json.loads((NODE_PACKAGE / "package.json").read_text())["version"] == version
    cli = run([str(venv / "bin" / "metricbatch"), "--version"], tmp_path, env)
    assert cli.stdout.strip() == f"metricbatch {version}"
    probe = (
        "import sys, importlib.metadata as md, metricbatch\n"
        "assert not {'boto3', 'botocore'} & set(sys.modules), 'import metricbatch stays cheap'\n"
        "files = {str(f) for f in md.files('metricbatch')}\n"
        "print(metricbatch.__version__, md.version('metricbatch'), 'metricbatch/py.typed' in files,\n"
        "      any(f.endswith('licenses/LICENSE') for f in files), md.requires('metricbatch'))\n"
    )
    out = run([str(venv / "bin" / "python"), "-c", probe], tmp_path, env).stdout.split(maxsplit=4)
    assert out[:4] == [version, version, "True", "True"], out
    assert "moto" in out[4] and "extra" in out[4]  # moto only behind an extra
    sdist = next((package_env / "dist").glob("metricbatch-*.tar.gz"))
    listing = subprocess.run(["tar", "tzf", str(sdist)], capture_output=True, text=True, check=True).stdout
    assert f"metricbatch-{version}/LICENSE" in listing.splitlines()
    # the users' type checker reads the package's annotations (py.typed): a wrong call is an error
    (tmp_path / "typed.py").write_text(
        "from metricbatch import send_metric\nsend_metric('Orders', 'one')\nreveal_type(send_metric)\n"
    )
    mypy_argv = [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
    mypy_argv += ["--python-executable", str(venv / "bin" / "python"), "typed.py"]
    mypy = subprocess.run(
        mypy_argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert 'Argument 2 to "send_metric" has incompatible type "str"; expected "float"' in mypy.stdout, mypy.stdout
    assert "missing library stubs or py.typed marker" not in mypy.stdout


POLL = ["poll", "--queue-url", "http://127.0.0.1:9/q", "--dlq-url", "http://127.0.0.1:9/d", "--region", "us-east-1"]


@pytest.mark.parametrize(
    ("argv", "missing"),
    [(["demo", "--metrics", "10"], "moto"), (["local"], "moto"), (POLL, "aws_lambda_powertools")],
    ids=["demo", "local", "poll"],
)
def test_a_verb_that_needs_an_extra_says_so_from_a_plain_install(
    package_env: Path, tmp_path: Path, argv: list[str], missing: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "METRICBATCH_", "AWS_"))}
    result = subprocess.run(
        [str(package_env / "venv" / "bin" / "metricbatch"), *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"metricbatch {argv[0]}: needs {missing}, which is not installed: pip install 'metricbatch[local]'"
    ]


# -- Node: the tarball in an app ---------------------------------------------------------------------------------
def node_app(package_env: Path) -> Path:
    if shutil.which("node") is None:
        pytest.fail("Node 20 is required (see README)")
    return package_env / "node-app"


@pytest.mark.parametrize(("kind", "file"), [("node-esm", "quick-start.mjs"), ("node-cjs", "quick-start.cjs")])
def test_the_node_quick_start_runs_from_the_tarball(
    package_env: Path, pipeline: LocalPipeline, kind: str, file: str
) -> None:
    app = node_app(package_env)
    namespace = f"Installed/{kind}{time.monotonic_ns()}"
    (app / file).write_text(quick_start(kind))
    run(["node", "--enable-source-maps", file], app, clean_env(pipeline, namespace))
    assert_quick_start_delivered(pipeline, namespace)


def test_the_typescript_quick_start_compiles_as_commonjs_and_runs(package_env: Path, pipeline: LocalPipeline) -> None:
    app = node_app(package_env)
    namespace = f"Installed/TypeScript{time.monotonic_ns()}"
    (app / "ts").mkdir(exist_ok=True)
    (app / "ts" / "quick-start.ts").write_text(quick_start("typescript"))
    # metricbatch/testing resolves under node10 too, with its types
    (app / "ts" / "testing.ts").write_text(
        'import { values, type CapturedMetric } from "metricbatch/testing";\n'
        "export const none: number[] = values('Orders');\nexport type Seen = CapturedMetric;\n"
    )
    config = {
        "compilerOptions": {
            "module": "commonjs", "moduleResolution": "node10", "target": "ES2022", "strict": True,
            "skipLibCheck": False, "outDir": "../out", "rootDir": ".", "types": ["node"],
            "typeRoots": [str(NODE_PACKAGE / "node_modules" / "@types")],
        },
        "include": ["*.ts"],
    }  # fmt: skip
    (app / "ts" / "tsconfig.json").write_text(json.dumps(config))
    env = clean_env(pipeline, namespace)
    run([str(TSC), "-p", "ts"], app, env)
    run(["node", "out/quick-start.js"], app, env)
    assert_quick_start_delivered(pipeline, namespace)


def test_process_exit_in_a_commonjs_app_still_delivers(package_env: Path, pipeline: LocalPipeline) -> None:
    # GIVEN the CommonJS build, whose exit sender (a child process for process.exit()) is its own compiled file
    app = node_app(package_env)
    namespace = f"Installed/Exit{time.monotonic_ns()}"
    (app / "exit.cjs").write_text(
        "const { sendMetric } = require('metricbatch');\n"
        "for (let i = 0; i < 7; i++) sendMetric('AtExit', i);\n"
        "process.exit(0);\n"
    )
    run(["node", "exit.cjs"], app, clean_env(pipeline, namespace))
    pipeline.drain()
    assert pipeline.read_series(namespace, "AtExit") == (21.0, 7.0)


def test_both_builds_loaded_together_share_one_default_producer(package_env: Path, pipeline: LocalPipeline) -> None:
    # GIVEN an ES module app that also loads the CommonJS build (a dependency of it requires metricbatch)
    app = node_app(package_env)
    namespace = f"Installed/Dual{time.monotonic_ns()}"
    (app / "dual.mjs").write_text(
        'import { createRequire } from "node:module";\n'
        'import * as esm from "metricbatch";\n'
        'import * as esmTesting from "metricbatch/testing";\n'
        "const cjs = createRequire(import.meta.url)('metricbatch');\n"
        "const cjsTesting = createRequire(import.meta.url)('metricbatch/testing');\n"
        "if (esm.MetricProducer === cjs.MetricProducer) throw new Error('expected two builds');\n"
        "for (let i = 0; i < 50; i++) { esm.sendMetric('Dual', 1); cjs.sendMetric('Dual', 2); }\n"
        "if (esm.getDefaultProducer() !== cjs.getDefaultProducer()) throw new Error('two default producers');\n"
        "const mem = new cjs.MetricProducer({ mode: 'memory' });\n"
        "mem.sendMetric('Captured', 3);\n"
        "if (esmTesting.values('Captured').join() !== '3' || cjsTesting.values('Captured').join() !== '3')\n"
        "  throw new Error('two capture stores');\n"
        "if (!(await esm.flush(10000))) throw new Error(JSON.stringify(cjs.stats()));\n"
        "console.log(JSON.stringify(esm.stats()));\n"
    )
    stats = json.loads(run(["node", "dual.mjs"], app, clean_env(pipeline, namespace)).stdout.strip().splitlines()[-1])
    # THEN one producer took all 100 metrics, and each arrives once
    assert stats["accepted"] == 100
    pipeline.drain()
    assert pipeline.read_series(namespace, "Dual") == (150.0, 100.0)


def test_the_tarball_ships_what_users_need_and_shares_the_apps_sdk(package_env: Path) -> None:
    installed = node_app(package_env) / "node_modules" / "metricbatch"
    files = {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()}
    assert {"README.md", "LICENSE", "package.json", "dist/cjs/package.json"} <= files
    assert (installed / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
    assert not [f for f in files if f.endswith(".map") or f.startswith("src/")], "no maps naming unshipped sources"
    manifest = json.loads((installed / "package.json").read_text())
    assert manifest["license"] == "Apache-2.0" and manifest["keywords"]
    for sdk in ("@aws-sdk/client-sqs", "@aws-sdk/client-cloudwatch"):
        assert manifest["dependencies"][sdk].startswith("^"), "a range, so the app's own SDK is shared"
    # the app's own @aws-sdk/client-sqs is the one metricbatch uses: no second copy nested inside the package
    assert not (installed / "node_modules").exists(), sorted((installed / "node_modules").rglob("package.json"))

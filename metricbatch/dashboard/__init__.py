"""Tooling: the synthesized savings dashboard rendered from a CloudWatch endpoint (the local one by default).

``body`` reads the ``DashboardBody`` from the cloud assembly, ``evaluate`` computes every widget (metric math in
``metric_math``), ``render`` draws them. Nothing here is imported by the producer, the batcher or the core.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metricbatch.dashboard.body import DashboardBody, LocalNames, find_template, load_body
from metricbatch.dashboard.evaluate import EvaluatedWidget, evaluate_dashboard, parse_relative_start
from metricbatch.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

DEFAULT_ASSEMBLY_ROOT = Path("cdk.out")
SYNTH_TIMEOUT_SECONDS = 180

__all__ = ["LocalNames", "RenderedDashboard", "assembly_for", "render_dashboard", "render_for_pipeline"]


@dataclass
class RenderedDashboard:
    path: Path
    body: DashboardBody
    widgets: list[EvaluatedWidget]
    start: float
    end: float

    def widget(self, title: str) -> EvaluatedWidget:
        (found,) = [w for w in self.widgets if w.title == title]
        return found


def assembly_for(env: str, root: Path = DEFAULT_ASSEMBLY_ROOT, *, synth_if_missing: bool = True) -> Path:
    """``cdk.out/<env>``; synthesized with the project's CDK app when it is missing and ``cdk.json`` is here."""
    assembly = root / env
    templates = list(assembly.glob("*.template.json"))
    in_project = Path("cdk.json").is_file()
    if templates and not (in_project and _older_than_sources(templates)):
        return assembly
    if synth_if_missing and in_project and shutil.which("npx"):
        logger.warning("synthesizing %s (npx cdk synth -c env=%s)", assembly, env)
        environ = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true"}
        # cdk.json runs `python3 app.py`: this interpreter's python3 (the one with aws-cdk-lib) comes first
        environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
        done = subprocess.run(
            ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", f"env={env}", "-o", str(assembly)],
            env=environ,
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise ConfigurationError(f"cdk synth of {env} failed: {done.stderr.strip()[-500:]}")
        return assembly
    raise ConfigurationError(
        f"no synthesized template in {assembly}: run `make synth` (or `npx cdk synth -c env={env} -o {assembly}`)"
    )


def _older_than_sources(templates: list[Path]) -> bool:
    """True when the app's sources changed after the synth (a stale assembly would show an old dashboard)."""
    sources = [Path("app.py"), Path("cdk.json"), *Path("infra").rglob("*.py"), Path("metricbatch/deploy.py")]
    newest = max((p.stat().st_mtime for p in sources if p.is_file()), default=0.0)
    return min(t.stat().st_mtime for t in templates) < newest


def render_dashboard(
    cloudwatch: Any,
    *,
    assembly: Path,
    names: LocalNames,
    out: Path,
    start: float | None = None,
    end: float | None = None,
) -> RenderedDashboard:
    """Render the assembly's dashboard from ``cloudwatch`` into ``out`` (``.png`` or ``.html``).

    The window defaults to the body's own ``start`` (``-P7D``) ending at the next whole minute, so a datum stamped
    in the current minute is in it.
    """
    from metricbatch.dashboard.render import render_html, render_png

    body = load_body(find_template(assembly), names)
    if end is None:
        end = (int(time.time()) // 60 + 1) * 60
    if start is None:
        start = end - parse_relative_start(str(body.body.get("start", "-P7D")))
    widgets = evaluate_dashboard(body, cloudwatch, start=start, end=end)
    title = f"{body.dashboard_id} ({assembly.name}) from local CloudWatch, {_iso(start)} to {_iso(end)}"
    if out.suffix.lower() == ".html":
        render_html(widgets, out, title=title, start=start, end=end)
    elif out.suffix.lower() == ".png":
        render_png(widgets, out, title=title, start=start, end=end)
    else:
        raise ConfigurationError(f"--out must end in .png or .html, got {out}")
    return RenderedDashboard(out, body, widgets, start, end)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def render_for_pipeline(pipeline: Any, out: Path, *, window_seconds: int | None = None) -> RenderedDashboard:
    """Render the dashboard of the local pipeline's environment (its settings' name) from its CloudWatch, after
    putting the AWS/SQS counts its gateway has seen."""
    pipeline.publish_service_metrics()
    end = (int(time.time()) // 60 + 1) * 60
    start = end - window_seconds if window_seconds else None
    return render_dashboard(
        pipeline.cloudwatch,
        assembly=assembly_for(pipeline.settings.name),
        names=pipeline.dashboard_names(),
        out=out,
        start=start,
        end=end,
    )

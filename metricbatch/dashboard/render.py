"""Evaluated widgets drawn with matplotlib on CloudWatch's 24-column grid (PNG), or as an HTML page around it.

Generic over the body: text widgets show their markdown, ``singleValue`` widgets their rows' latest values,
``timeSeries`` widgets their visible rows on left and right axes with the horizontal annotations. A row the local
CloudWatch cannot compute is listed as unavailable with the reason, never drawn as zero.
"""

from __future__ import annotations

import base64
import html
import io
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from metricbatch.dashboard.evaluate import EvaluatedRow, EvaluatedWidget

GRID_COLUMNS = 24  # CloudWatch dashboards are 24 units wide
INCHES_PER_COLUMN = 0.75
INCHES_PER_ROW = 0.62
DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MATPLOTLIB_MISSING = "metricbatch dashboard needs matplotlib: pip install 'metricbatch[local]'"


def format_value(value: float | None, *, full_precision: bool = False) -> str:
    """A single value as the widget shows it (no datapoint: an em dash, not zero)."""
    if value is None:
        return "\u2014"
    if full_precision:
        return f"{value:,.10f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    magnitude = abs(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def _markdown_text(markdown: str, width: int) -> str:
    lines = []
    for raw in markdown.splitlines():
        line = re.sub(r"^#+\s*", "", raw).replace("`", "")
        lines.extend(textwrap.wrap(line, width) or [""])
    return "\n".join(lines)


def _fit(title: str, width: int) -> str:
    """A title shortened to its widget's width (about 9 characters per grid column at this size)."""
    return textwrap.shorten(title, max(12, int(width * 9)), placeholder="...")


def _row_label(row: EvaluatedRow) -> str:
    if row.unavailable is not None:
        reason = row.unavailable.split(":")[0].split(". ")[0]
        return f"{row.label}: not available ({textwrap.shorten(reason, 70)})"
    if row.values is None or np.all(np.isnan(row.values)):
        return f"{row.label} (no data)"
    return row.label


def _draw_text(ax: Any, widget: EvaluatedWidget) -> None:
    width_chars = max(20, int(widget.width * INCHES_PER_COLUMN * 15))
    ax.text(0.01, 0.95, _markdown_text(str(widget.properties.get("markdown", "")), width_chars), va="top",
            ha="left", fontsize=8.5, wrap=True, transform=ax.transAxes, parse_math=False)  # fmt: skip


def _draw_single_value(ax: Any, widget: EvaluatedWidget) -> None:
    full = bool(widget.properties.get("singleValueFullPrecision"))
    visible = [r for r in widget.rows if r.visible]
    for i, row in enumerate(visible):
        x = (i + 0.5) / max(1, len(visible))
        if row.unavailable is not None:
            text, color = "n/a", "#b00020"
        else:
            text, color = format_value(row.latest, full_precision=full), "#1f1f1f"
        if row.inputs_without_data:
            ax.text(x, 0.78, "no data: " + ", ".join(row.inputs_without_data), ha="center", va="center",
                    fontsize=6.5, color="#8a6d00", transform=ax.transAxes, parse_math=False)  # fmt: skip
        ax.text(x, 0.42, text, ha="center", va="center", fontsize=17 if len(visible) <= 3 else 14, color=color,
                transform=ax.transAxes, parse_math=False)  # fmt: skip
        ax.text(x, 0.12, "\n".join(textwrap.wrap(row.label, 22)), ha="center", va="center", fontsize=7.5,
                color="#444444", transform=ax.transAxes, parse_math=False)  # fmt: skip


def _draw_time_series(ax: Any, widget: EvaluatedWidget, window: tuple[datetime, datetime]) -> list[str]:
    notes = []
    right_rows = [r for r in widget.rows if r.visible and r.y_axis == "right"]
    right = ax.twinx() if right_rows else None
    y_axis = widget.properties.get("yAxis", {})
    handles = []
    colors = iter(PALETTE * 4)  # one cycle over both axes: a right-axis line never repeats a left-axis colour
    drawn = 0
    for row in widget.rows:
        if not row.visible:
            continue
        target = right if (row.y_axis == "right" and right is not None) else ax
        color = next(colors)
        label = _row_label(row).replace("$", r"\$")  # a legend is mathtext: a lone $ is a dollar sign
        if row.values is None or np.all(np.isnan(row.values)):
            notes.append(label)
            (handle,) = target.plot([], [], label=label, color=color)
        else:
            drawn += 1
            (handle,) = target.plot(
                row.timestamps, row.values, marker="o", markersize=3, linewidth=1.2, label=label, color=color
            )
        handles.append(handle)
    if not drawn:
        ax.text(0.5, 0.5, "no data in the local CloudWatch", ha="center", va="center", color="#777777",
                fontsize=9, transform=ax.transAxes)  # fmt: skip
    for annotation in widget.properties.get("annotations", {}).get("horizontal", []):
        if "value" in annotation:
            ax.axhline(float(annotation["value"]), color="#d62728", linestyle="--", linewidth=1)
            ax.annotate(str(annotation.get("label", annotation["value"])), (0.01, float(annotation["value"])),
                        xycoords=("axes fraction", "data"), fontsize=7, color="#d62728", va="bottom")  # fmt: skip
    for axis, side in ((ax, "left"), (right, "right")):
        settings = y_axis.get(side, {})
        if axis is None:
            continue
        if "label" in settings:
            axis.set_ylabel(str(settings["label"]), fontsize=7)
        if "min" in settings or "max" in settings:
            axis.set_ylim(settings.get("min"), settings.get("max"))
        axis.tick_params(labelsize=7)
    import matplotlib.dates as mdates

    ax.set_xlim(*window)
    locator = mdates.AutoDateLocator(minticks=2, maxticks=max(3, widget.width // 2))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.tick_params(axis="x", labelsize=6.5, rotation=0)
    ax.grid(True, alpha=0.3)
    if handles:
        ax.legend(handles=handles, fontsize=6.5, loc="upper left", framealpha=0.8)
    return notes


def render_png(widgets: list[EvaluatedWidget], path: Path, *, title: str, start: float, end: float) -> Path:
    """Draw the widgets at their grid positions into a PNG at ``path``."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the dev stack
        raise RuntimeError(MATPLOTLIB_MISSING) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max((w.y + w.height for w in widgets), default=1)
    header = 1.0
    fig_width, fig_height = GRID_COLUMNS * INCHES_PER_COLUMN, rows * INCHES_PER_ROW + header
    fig = plt.figure(figsize=(fig_width, fig_height), dpi=DPI)
    fig.patch.set_facecolor("#f2f3f3")
    fig.text(0.01, 1 - 0.45 / fig_height, title, fontsize=13, weight="bold", va="center", parse_math=False)
    pad = 0.08
    for widget in widgets:
        left = (widget.x * INCHES_PER_COLUMN + pad) / fig_width
        top_inches = header + widget.y * INCHES_PER_ROW
        bottom = 1 - (top_inches + widget.height * INCHES_PER_ROW - pad) / fig_height
        width = (widget.width * INCHES_PER_COLUMN - 2 * pad) / fig_width
        height = (widget.height * INCHES_PER_ROW - 2 * pad) / fig_height
        frame = fig.add_axes((left, bottom, width, height))
        frame.set_xticks([])
        frame.set_yticks([])
        frame.set_facecolor("white")
        if widget.title:
            frame.set_title(_fit(widget.title, widget.width), fontsize=9, loc="left", weight="bold", parse_math=False)
        if widget.type == "text":
            _draw_text(frame, widget)
        elif widget.view == "singleValue":
            _draw_single_value(frame, widget)
        else:
            frame.remove()
            graph_height = height - 0.3 / fig_height
            ax = fig.add_axes((left + 0.55 / fig_width, bottom + 0.35 / fig_height, width - 1.15 / fig_width,
                               graph_height - 0.35 / fig_height))  # fmt: skip
            ax.set_title(_fit(widget.title, widget.width), fontsize=9, loc="left", weight="bold", parse_math=False)
            _draw_time_series(ax, widget, (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor=fig.get_facecolor())
    plt.close(fig)
    return path


def render_html(widgets: list[EvaluatedWidget], path: Path, *, title: str, start: float, end: float) -> Path:
    """An HTML page: the PNG inline, then every widget's rows and latest values as tables."""
    buffer = io.BytesIO()
    png = path.with_name(path.name + ".tmp.png")
    render_png(widgets, png, title=title, start=start, end=end)
    buffer.write(png.read_bytes())
    png.unlink()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<img alt='dashboard' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>",
    ]
    for widget in widgets:
        if widget.type != "metric":
            continue
        parts.append(f"<h2>{html.escape(widget.title)}</h2><table border='1'><tr><th>row</th><th>query</th>"
                     "<th>period</th><th>latest</th></tr>")  # fmt: skip
        for row in widget.rows:
            query = row.expression or " ".join(row.metric or ()) + f" ({row.stat})"
            value = "not available locally: " + row.unavailable if row.unavailable else format_value(row.latest)
            hidden = "" if row.visible else " (hidden)"
            parts.append(
                f"<tr><td>{html.escape(row.label + hidden)}</td><td><code>{html.escape(query)}</code></td>"
                f"<td>{row.period}</td><td>{html.escape(value)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path


def summary_lines(widgets: list[EvaluatedWidget]) -> list[str]:
    """Each single-value widget's numbers as text (what the CLI prints beside the picture)."""
    lines = []
    for widget in widgets:
        if widget.view != "singleValue" or widget.type != "metric":
            continue
        full = bool(widget.properties.get("singleValueFullPrecision"))
        values = [
            f"{row.label} = {'n/a' if row.unavailable else format_value(row.latest, full_precision=full)}"
            for row in widget.rows
            if row.visible
        ]
        lines.append(f"{widget.title}: " + "; ".join(values))
    return lines

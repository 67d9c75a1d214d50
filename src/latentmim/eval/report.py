"""What every evaluation leaves behind: ``results.json``, a short ``results.md`` table, figures."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from latentmim.runtime.logger import pyplot


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 2) -> str:
    """A GitHub markdown table; floats rounded to ``digits``, missing cells as ``-``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    """Write via a temp file + rename: an interrupted run never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(out_dir: str | Path, results: Mapping[str, Any], markdown: str) -> Path:
    """Write ``results.json`` and ``results.md`` into ``out_dir`` (created if needed).

    Returns:
        The folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    _write_text(out / "results.md", markdown.rstrip() + "\n")
    return out


def bar_chart(
    path: str | Path,
    groups: Mapping[str, Mapping[str, float]],
    title: str,
    ylabel: str = "accuracy (%)",
    errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Grouped bars: one group per metric, one bar per series (e.g. per checkpoint).

    Args:
        path: the PNG to write.
        groups: ``{metric: {series: value}}``.
        title: figure title.
        ylabel: y-axis label.
        errors: optional ``{metric: {series: std}}`` drawn as error bars.
    """
    plt = pyplot()
    path = Path(path)
    metrics = list(groups)
    series = list(dict.fromkeys(s for g in groups.values() for s in g))  # first-seen order
    width = 0.8 / max(len(series), 1)
    width_in = min(16.0, max(5.0, 0.3 * len(metrics) * max(len(series), 1) + 2.0))
    fig, ax = plt.subplots(figsize=(width_in, 4.0))
    for i, name in enumerate(series):
        xs = [m + (i - (len(series) - 1) / 2) * width for m in range(len(metrics))]
        ys = [groups[m].get(name, float("nan")) for m in metrics]
        err = [errors.get(m, {}).get(name, 0.0) for m in metrics] if errors else None
        bars = ax.bar(xs, ys, width, label=name, yerr=err, capsize=3 if err else 0)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(range(len(metrics)), metrics, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def line_chart(
    path: str | Path,
    x: Sequence[float],
    lines: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str = "accuracy (%)",
    logx: bool = False,
) -> Path:
    """Lines with a shaded +-std band: ``lines = {name: (means, stds)}`` over ``x``."""
    plt = pyplot()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for name, (mean, std) in lines.items():
        ax.plot(x, mean, marker="o", label=name)
        lo = [m - s for m, s in zip(mean, std, strict=True)]
        hi = [m + s for m, s in zip(mean, std, strict=True)]
        ax.fill_between(x, lo, hi, alpha=0.2)
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x), [str(v) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(out_dir: str | Path) -> None:
    """Print ``results.md`` and where the files are (the CLI's closing message)."""
    out = Path(out_dir)
    print((out / "results.md").read_text())
    print(f"results in {out}: results.json, results.md" + "".join(
        f", {p.name}" for p in sorted(out.glob("*.png"))))

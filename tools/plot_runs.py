"""Plot the NN monitor of several pre-training runs side by side: one PNG for a sweep in the docs.

Reads each run folder's ``eval.jsonl`` (one record per evaluated epoch: ``nn_loo``,
``knn20_top1``) and, where present, ``results.json`` (the raw-pixel floor), and draws NN (LOO
1-NN) and weighted 20-NN against the epoch, one line per run. A run given as ``LABEL=DIR`` is
drawn under that label, otherwise under its folder name; the first run (the reference) is drawn
in black, thicker.

    python tools/plot_runs.py outputs/sweep/base lr=4e-3=outputs/sweep/lr4e-3 \
        --title "demo recipe, one setting changed" --out docs/img/demo_sweep.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = (("nn_loo", "NN (LOO 1-NN, %)"), ("knn20_top1", "weighted 20-NN (%)"))


def _parse(spec: str) -> tuple[str, Path]:
    """``LABEL=DIR`` or ``DIR`` (the label is then the folder's name); the last '=' splits."""
    label, sep, folder = spec.rpartition("=")
    path = Path(folder if sep else spec)
    return (label if sep else path.name), path


def _records(run: Path) -> list[dict]:
    path = run / "eval.jsonl"
    if not path.is_file():
        raise SystemExit(f"plot_runs: {path}: no eval.jsonl (is '{run}' a pre-training run folder?)")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a half-written last line of a running job
    seen: dict[int, dict] = {}
    for r in out:  # a resumed run may evaluate an epoch twice: keep the last
        seen[int(r["epoch"])] = r
    return [seen[e] for e in sorted(seen)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders, each DIR or LABEL=DIR")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    floor: dict[str, float] = {}
    colours = plt.get_cmap("tab20").colors
    for i, spec in enumerate(args.runs):
        label, run = _parse(spec)
        recs = _records(run)
        style = dict(color="k", lw=2.5) if i == 0 else dict(color=colours[(i - 1) % len(colours)], lw=1.2)
        for ax, (key, _) in zip(axes, METRICS, strict=True):
            ax.plot([r["epoch"] for r in recs], [r[key] for r in recs], marker="o", ms=3, label=label, **style)
        res = run / "results.json"
        if res.is_file() and not floor:
            floor = json.loads(res.read_text()).get("raw_pixels", {})
    for ax, (key, name) in zip(axes, METRICS, strict=True):
        if key in floor:
            ax.axhline(floor[key], color="k", ls="--", lw=1, label="raw pixels")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

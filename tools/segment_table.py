"""Summarise several ``latentmim eval segment`` outputs: mean ± std over seeds, a table and a PNG.

Each argument is ``LABEL=DIR[,DIR...]``: the evaluation folders (each with ``results.json``) of
the seeds of one method. Per method it reports the clustering's best-k mIoU and, where the
evaluation ran with ``probe_images``, the linear probe's semantic and foreground mIoU; the
baselines every folder carries (``raw_pixels``, ``random_init``) become rows of their own, pooled
over all folders. Prints a markdown table (x100, mean ± sample std) and, with ``--out``, draws
grouped bars with the std as error bars.

    python tools/segment_table.py "Latent MIM=outputs/probe/lmim,outputs/probe/lmim_s1" \
        "MAE=outputs/probe/mae" --out docs/img/segmentation_clustering_vs_probe.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SCORES = (("cluster", "clustering, best k"), ("semantic", "linear probe, semantic"),
          ("foreground", "linear probe, foreground"))  # fmt: skip
BASELINES = (("raw_pixels", "raw pixels"), ("random_init", "random init"))


def _read(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise SystemExit(f"segment_table: {path}: not found (is '{folder}' an eval segment output folder?)")
    res = json.loads(path.read_text())
    if res.get("eval") != "segment":
        raise SystemExit(f"segment_table: {path}: not an eval segment result")
    return res


def _scores(res: dict, source: str) -> dict[str, float]:
    """{score: value x100} of one feature source of one evaluation (missing scores left out)."""
    out = {}
    if source in res.get("miou", {}):
        out["cluster"] = 100 * res["miou"][source]["best_k"]
    for task in ("semantic", "foreground"):
        if source in res.get("probe", {}):
            out[task] = 100 * res["probe"][source][task]
    return out


def collect(specs: list[str]) -> dict[str, dict[str, list[float]]]:
    """{row label: {score: [value per seed]}}: the methods in order, then the pooled baselines."""
    rows: dict[str, dict[str, list[float]]] = {}
    pooled: dict[str, dict[str, list[float]]] = {label: {} for _, label in BASELINES}
    for spec in specs:
        label, sep, folders = spec.rpartition("=")
        if not sep or not label:
            raise SystemExit(f"segment_table: '{spec}': expected LABEL=DIR[,DIR...]")
        results = [_read(Path(f)) for f in folders.split(",")]  # every path checked before any sum
        row = rows.setdefault(label, {})
        for res in results:
            for score, v in _scores(res, "encoder").items():
                row.setdefault(score, []).append(v)
            for source, name in BASELINES:
                for score, v in _scores(res, source).items():
                    pooled[name].setdefault(score, []).append(v)
    rows.update({name: vals for name, vals in pooled.items() if vals})
    return rows


def _cell(values: list[float] | None) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def markdown(rows: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| features | n | " + " | ".join(name for _, name in SCORES) + " |", "|---|---|" + "---|" * len(SCORES)]
    for label, vals in rows.items():
        n = max(len(v) for v in vals.values())
        lines.append(f"| {label} | {n} | " + " | ".join(_cell(vals.get(s)) for s, _ in SCORES) + " |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, list[float]]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [(s, name) for s, name in SCORES if any(s in v for v in rows.values())]
    fig, axes = plt.subplots(1, len(scores), figsize=(4.5 * len(scores), 4))
    for ax, (score, name) in zip(np.atleast_1d(axes), scores, strict=True):
        labels = [lab for lab, v in rows.items() if score in v]
        means = [np.mean(rows[lab][score]) for lab in labels]
        stds = [np.std(rows[lab][score], ddof=1) if len(rows[lab][score]) > 1 else 0.0 for lab in labels]
        ax.bar(range(len(labels)), means, yerr=stds, capsize=3, color=plt.get_cmap("tab10").colors[: len(labels)])
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_title(name)
        ax.set_ylabel("mIoU (%)")
        ax.set_ylim(0, max(means) * 1.1)  # from zero: the bars' lengths compare honestly
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("methods", nargs="+", help="LABEL=DIR[,DIR...] per method (the seeds' eval folders)")
    p.add_argument("--out", help="PNG to write (optional)")
    p.add_argument("--title", default="segmentation of the val images (mean ± std over seeds)")
    args = p.parse_args(argv)
    rows = collect(args.methods)
    print(markdown(rows))
    if args.out:
        plot(rows, Path(args.out), args.title)
        print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

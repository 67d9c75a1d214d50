"""An ablation table's outputs: markdown table (measured next to the paper), JSON, NN-vs-time PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402

from latentmim.ablate.plan import Plan  # noqa: E402
from latentmim.ablate.tables import Table  # noqa: E402

# Measured columns: (header, key in a row's results, format).
MEASURED = (
    ("S(trg)", "sim_trg", "{:.2f}"),
    ("S(pred)", "sim_pred", "{:.2f}"),
    ("S(enc)", "sim_enc", "{:.2f}"),
    ("NN", "nn", "{:.1f}"),
    ("kNN", "knn", "{:.1f}"),
    ("LP (logreg)", "lp", "{:.1f}"),
    ("img/s", "img_per_s", "{:.0f}"),
)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def markdown_table(table: Table, plan: Plan, results: dict[str, dict[str, Any]]) -> str:
    """The measured columns of every finished row, then the paper's, one line per row."""
    paper_cols = table.paper_columns
    extra = ("vs MAE",) if table.name == "pcae" else ()
    head = ["row", *[h for h, _, _ in MEASURED], *extra, *[f"paper {c}" for c in paper_cols]]
    lines = [
        f"### {table.title}",
        "",
        f"Measured: dataset `{plan.dataset}`, model `{plan.model}`, {plan.epochs} epochs per row. "
        "NN = leave-one-out 1-NN on val (official), kNN = weighted 20-NN train -> val, "
        "LP (logreg) = logistic regression on cached avg-pool features (not the 90-epoch LARS protocol), "
        "S = mean pairwise cosine of targets / predictions (end of training) / encoder patch tokens (val). "
        "Paper: ViT-B/16 on ImageNet-1K.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    mae_rate = results.get("mae", {}).get("img_per_s")
    if "random_init" in results:  # the reference: what the rows' shared initialisation gives
        r = results["random_init"]
        cells = ["Random-init encoder (no training)", *[_cell(r.get(k), f) for _, k, f in MEASURED]]
        lines.append("| " + " | ".join(cells + ["-"] * (len(extra) + len(paper_cols))) + " |")
    for row in table.rows:
        if row.key not in results:
            continue
        r = results[row.key]
        cells = [row.label, *[_cell(r.get(k), f) for _, k, f in MEASURED]]
        if extra:
            ratio = r["img_per_s"] / mae_rate if mae_rate and r.get("img_per_s") else None
            cells.append(_cell(ratio, "{:.2f}x"))
        cells += [_cell(row.paper.get(c), "{:.2f}" if c == "Sim" else "{:.1f}") for c in paper_cols]
        if r.get("collapse"):
            cells[0] += " (collapse warning)"
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def plot_nn_against_time(table: Table, results: dict[str, dict[str, Any]], path: Path) -> Path:
    """One line per row: NN accuracy (%) against training minutes.

    Every row starts from the same seeded encoder, so with a measured random-init reference
    each curve starts at (0, its NN).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    start = results.get("random_init", {}).get("nn")
    for row in table.rows:
        curve = results.get(row.key, {}).get("nn_curve") or []
        if curve and start is not None:
            curve = [(0.0, start), *curve]
        if curve:
            t, nn = zip(*curve, strict=True)
            ax.plot([s / 60 for s in t], nn, marker="o", label=row.label)
    if start is not None:
        ax.axhline(start, color="gray", ls="--", lw=1, label="random-init encoder")
    ax.set_xlabel("training time (min, evaluation excluded)")
    ax.set_ylabel("NN accuracy (%), LOO 1-NN on val")
    ax.set_title(table.title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""An ablation table's outputs: markdown table (measured next to the paper), JSON, NN-vs-time PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latentmim.ablate.plan import Plan
from latentmim.ablate.tables import Ordering, Row, Table
from latentmim.runtime.logger import pyplot

# Measured columns: (header, key in a row's results, format).
MEASURED = (
    ("S(trg)", "sim_trg", "{:.2f}"),
    ("S(pred)", "sim_pred", "{:.2f}"),
    ("S(enc)", "sim_enc", "{:.2f}"),
    ("NN", "nn", "{:.1f}"),
    ("kNN", "knn", "{:.1f}"),
    ("LP (logreg)", "lp", "{:.1f}"),
    ("mIoU", "miou", "{:.1f}"),
    ("probe sem. mIoU", "probe_semantic", "{:.1f}"),
    ("probe fg. mIoU", "probe_foreground", "{:.1f}"),
    ("img/s", "img_per_s", "{:.0f}"),
)
COLLAPSED = 0.95  # S(targets) at or above this is a collapse (the collapse guard's threshold)


def _cell(value: Any, fmt: str, std: Any = None, n: int = 1) -> str:
    if value is None:
        return "-"
    return fmt.format(value) + (f" ± {fmt.format(std)}" if n > 1 and std is not None else "")


def _measured(r: dict[str, Any], columns: tuple) -> list[str]:
    n = r.get("n_seeds", 1)
    return [_cell(r.get(k), f, r.get(f"{k}_std"), n) for _, k, f in columns]


def verdict(order: Ordering, results: dict[str, dict[str, Any]]) -> tuple[str, str, str]:
    """(measured, 2 std, holds?) of one of the paper's orderings.

    A gap under 2 std (the larger of the two rows' std over seeds) is "within noise"; with one
    seed there is no std, and the verdict says so.
    """
    a, b = results.get(order.better), results.get(order.worse)
    if order.collapse:  # judged on the row's own S(targets)
        if a is None or a.get("sim_trg") is None:
            return "-", "-", "not run"
        s = a["sim_trg"]
        return f"S(trg) {s:.2f}", "-", "holds" if s >= COLLAPSED else "does not hold (no collapse)"
    if a is None or b is None or a.get(order.metric) is None or b.get(order.metric) is None:
        return "-", "-", "not run"
    m = order.metric
    gap = a[m] - b[m]
    n = min(a.get("n_seeds", 1), b.get("n_seeds", 1))
    noise = 2 * max(a.get(f"{m}_std", 0.0), b.get(f"{m}_std", 0.0))
    shown = f"{a[m]:.1f} vs {b[m]:.1f} ({gap:+.1f})"
    if n < 2:
        word = "holds" if gap > 0 or (order.at_least and gap == 0) else "does not hold"
        return shown, "-", f"{word} (1 seed)"
    if abs(gap) < noise:
        return shown, f"{noise:.1f}", "within noise" + (" (>= holds)" if order.at_least else "")
    return shown, f"{noise:.1f}", "holds" if gap > 0 else "reversed"


def orderings_table(table: Table, results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per ordering of the paper, with the measured gap and the verdict."""
    if not table.orderings:
        return []
    lines = ["", "Paper's orderings (holds = gap > 2 std over seeds; within noise = gap < 2 std):", "",
             "| ordering | measured | 2 std | holds? |", "|---|---|---|---|"]
    for order in table.orderings:
        lines.append(f"| {order.label} | " + " | ".join(verdict(order, results)) + " |")
    return lines


def markdown_table(table: Table, plan: Plan, results: dict[str, dict[str, Any]],
                   rows: tuple[Row, ...] | None = None) -> str:
    """The measured columns of every finished row, then the paper's, one line per row."""
    rows = rows if rows is not None else table.rows
    paper_cols = table.paper_columns
    extra = ("vs MAE",) if table.name == "pcae" else ()
    # the segmentation columns only where they were measured (ablate segment_images=N, segment_probe_images=M)
    optional = ("miou", "probe_semantic", "probe_foreground")
    columns = tuple(c for c in MEASURED if c[1] not in optional or any(c[1] in r for r in results.values()))
    head = ["row", *[h for h, _, _ in columns], *extra, *[f"paper {c}" for c in paper_cols]]
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
    for ref, label in (("raw_pixels", "Raw pixels (floor)"), ("random_init", "Random-init encoder (no training)")):
        if ref in results:  # the references: pixels, and what the rows' shared initialisation gives
            cells = [label, *_measured(results[ref], columns)]
            lines.append("| " + " | ".join(cells + ["-"] * (len(extra) + len(paper_cols))) + " |")
    for row in rows:
        if row.key not in results:
            continue
        r = results[row.key]
        if r.get("n_seeds", 1) == 0:
            lines.append(f"| {row.label} (diverged: non-finite loss) |" + " - |" * (len(head) - 1))
            continue
        cells = [row.label + (f" ({r['n_seeds']} seeds)" if r.get("n_seeds", 1) > 1 else ""), *_measured(r, columns)]
        if extra:
            ratio = r["img_per_s"] / mae_rate if mae_rate and r.get("img_per_s") else None
            cells.append(_cell(ratio, "{:.2f}x"))
        cells += [_cell(row.paper.get(c), "{:.2f}" if c == "Sim" else "{:.1f}") for c in paper_cols]
        if r.get("collapse"):
            cells[0] += " (collapse warning)"
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", table.note]
    lines += orderings_table(table, results)
    return "\n".join(lines) + "\n"


def plot_nn_against_time(table: Table, results: dict[str, dict[str, Any]], path: Path,
                         rows: tuple[Row, ...] | None = None) -> Path:
    """One line per row: NN accuracy (%) against training minutes.

    Every row starts from the same seeded encoder, so with a measured random-init reference
    each curve starts at (0, its NN).
    """
    plt = pyplot()  # matplotlib (the [eval] extra), imported when a figure is drawn
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    start = results.get("random_init", {}).get("nn")
    for row in rows if rows is not None else table.rows:
        curve = results.get(row.key, {}).get("nn_curve") or []
        if curve and start is not None:
            curve = [(0.0, start), *curve]
        if curve:
            t, nn = zip(*curve, strict=True)
            ax.plot([s / 60 for s in t], nn, marker="o", label=row.label)
    if start is not None:
        ax.axhline(start, color="gray", ls="--", lw=1, label="random-init encoder")
    floor = results.get("raw_pixels", {}).get("nn")
    if floor is not None:
        ax.axhline(floor, color="black", ls=":", lw=1, label="raw pixels")
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

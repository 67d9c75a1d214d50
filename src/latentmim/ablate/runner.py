"""Run an ablation table: each row (and each of its seeds) through the normal pre-training, resumably.

A run whose folder holds ``ablate.json`` is finished and never re-run; one with ``results.json``
is trained and only needs its evaluation; one with ``checkpoint_latest.pth`` was interrupted and
resumes from it (``resume=True``); any other run starts. Two references are measured once per
table: the untrained encoder every row starts from (``random_init.json``) and raw pixels
(``raw_pixels.json``, the floor). With ``seeds=N`` every row is trained N times (``env.seed``
0..N-1 on the same images) and reported as mean +- std.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from tqdm import tqdm

from latentmim.ablate.evaluate import (
    evaluate_random_init,
    evaluate_raw_pixels,
    evaluate_row,
    segmentation_miou,
)
from latentmim.ablate.plan import AblateOptions, Plan, get_table, load_json, make_plan, run_name
from latentmim.ablate.report import markdown_table, plot_nn_against_time
from latentmim.ablate.tables import Table, rows_of
from latentmim.runtime.checkpoint import write_text_atomic
from latentmim.runtime.progress import live_bars

ROW_RESULT = "ablate.json"
REFERENCE = "random_init.json"  # the untrained encoder, measured once per table
FLOOR = "raw_pixels.json"  # raw pixels, measured once per table
AGGREGATED = ("nn", "knn", "lp", "miou", "probe_semantic", "probe_foreground", "sim_trg", "sim_pred", "sim_enc",
              "img_per_s")


def _segmentation_stale(result: dict[str, Any], segment_images: int, probe_images: int) -> bool:
    """Whether a finished row's segmentation scores are missing or were measured with other options
    (rows written before these were recorded count as stale: re-scoring is cheap and deterministic)."""
    if not segment_images or result.get("status") != "finished":
        return False
    return (result.get("segment_images") != segment_images
            or result.get("segment_probe_images", 0) != probe_images)  # fmt: skip


def run_row(plan: Plan, key: str, table_dir: Path, seed: int = 0, segment_images: int = 0,
            segment_probe_images: int = 0) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) and evaluate one seed of one row; returns its measured columns.

    A finished row is not trained again; its segmentation is re-scored when asked for with other
    ``segment_images`` / ``segment_probe_images`` than it was measured with.
    """
    from latentmim.engine.pretrain import pretrain  # heavy import, only when training
    from latentmim.training.errors import NonFiniteLoss

    run_dir = table_dir / run_name(key, seed)
    done = run_dir / ROW_RESULT
    if done.exists():
        result = load_json(done)
        if _segmentation_stale(result, segment_images, segment_probe_images):
            cfg = plan.row_config(key, table_dir, seed)
            if cfg.dataset == "synthetic":
                result.update(segmentation_miou(run_dir, segment_images, cfg.log.progress, segment_probe_images))
                write_text_atomic(done, json.dumps(result, indent=2))
        return result
    cfg = plan.row_config(key, table_dir, seed)
    status = "finished"
    if not (run_dir / "results.json").exists():
        try:
            status = pretrain(cfg).get("status", "finished")
        except NonFiniteLoss as err:  # a diverged row is a result of the table, not a crash of it
            result = {"status": "diverged", "error": str(err), "seed": seed}
            done.write_text(json.dumps(result, indent=2))
            return result
    if status == "interrupted":  # SIGTERM: the checkpoint is saved, the next call resumes
        return {"status": "interrupted"}
    result = {"status": status, "seed": cfg.env.seed, **evaluate_row(cfg, run_dir, cfg.log.progress)}
    if segment_images and cfg.dataset == "synthetic":
        result.update(segmentation_miou(run_dir, segment_images, cfg.log.progress, segment_probe_images))
    write_text_atomic(done, json.dumps(result, indent=2))  # a kill mid-write leaves the old file or the new
    return result


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's seeds -> mean of every measured column, ``<col>_std`` (sample std, 0 for one seed),
    ``n_seeds``, and the seed 0 run's curve and collapse events for the plots."""
    ok = [r for r in runs if r.get("status") not in ("interrupted", "diverged")]
    if not ok:
        return {"status": runs[0].get("status", "diverged") if runs else "missing", "n_seeds": 0, "runs": runs}
    out: dict[str, Any] = {"status": ok[0]["status"], "n_seeds": len(ok), "runs": runs,
                           "nn_curve": ok[0].get("nn_curve"), "collapse": ok[0].get("collapse"),
                           "epochs": ok[0].get("epochs")}
    for key in AGGREGATED:
        values = [float(r[key]) for r in ok if r.get(key) is not None]
        if values:
            out[key] = statistics.fmean(values)
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        elif any(key in r for r in ok):
            out[key] = None  # measured as "not applicable" (e.g. S(targets) of MAE)
    if len(ok) < len(runs):
        out["diverged_seeds"] = len(runs) - len(ok)
    return out


def write_report(table: Table, plan: Plan, results: dict[str, dict[str, Any]], table_dir: Path,
                 supervised: bool = True) -> dict[str, Path]:
    """``results.md``, ``results.json`` and ``nn_vs_time.png`` of the rows finished so far."""
    finished = {k: r for k, r in results.items() if r.get("status") != "interrupted"}
    rows = rows_of(table, supervised)
    md = table_dir / "results.md"
    md.write_text(markdown_table(table, plan, finished, rows))
    js = table_dir / "results.json"
    paper = {r.key: r.paper for r in rows}
    measured = {k: r for k, r in finished.items() if k not in ("random_init", "raw_pixels")}
    js.write_text(json.dumps({"table": table.name, "dataset": plan.dataset, "model": plan.model,
                              "epochs": plan.epochs, "rows": measured, "random_init": finished.get("random_init"),
                              "raw_pixels": finished.get("raw_pixels"), "paper": paper}, indent=2))
    png = plot_nn_against_time(table, finished, table_dir / "nn_vs_time.png", rows)
    return {"markdown": md, "json": js, "png": png}


def _reference(path: Path, measure: Any) -> dict[str, Any]:
    if not path.exists():
        path.write_text(json.dumps({"status": "reference", **measure()}))
    return load_json(path)


def run_table(name: str, opts: AblateOptions, overrides: list[str]) -> dict[str, Any]:
    """Plan, run every selected row (every seed), and write the report.

    Args:
        name: table name (:data:`~latentmim.ablate.tables.TABLES`).
        opts: the command's options.
        overrides: ``key=value`` config overrides applied to every row.

    Returns:
        ``{"rows": {key: aggregated columns}, "files": {...}, "table_dir": Path}``.
    """
    table = get_table(name)
    table_dir = Path(opts.output_dir) / table.name
    plan = make_plan(table, opts, overrides, table_dir)
    first = plan.row_config(next(iter(plan.rows)), table_dir)
    results: dict[str, dict[str, Any]] = {
        "random_init": _reference(table_dir / REFERENCE, lambda: evaluate_random_init(first, first.log.progress)),
        "raw_pixels": _reference(table_dir / FLOOR, lambda: evaluate_raw_pixels(first, first.log.progress)),
    }
    keys = [r.key for r in rows_of(table, opts.supervised)
            if r.key in plan.rows and (not opts.row_keys or r.key in opts.row_keys)]
    seeds = max(opts.seeds, 1)
    # Runs already finished in an earlier call also go into the report.
    runs: dict[str, list[dict[str, Any]]] = {}
    for key in plan.rows:
        found = [load_json(table_dir / run_name(key, s) / ROW_RESULT) for s in range(seeds)
                 if (table_dir / run_name(key, s) / ROW_RESULT).exists()]
        if found:
            runs[key] = found
            results[key] = aggregate(found)
    # Seed-major order: every row's first seed before any second seed, so a cut-short table
    # already compares all rows.
    jobs = [(s, k) for s in range(seeds) for k in keys]
    bar = tqdm(jobs, desc=f"ablate {table.name} ({plan.epochs} epochs/row, {seeds} seed(s))", unit="run",
               disable=not live_bars())
    for i, (seed, key) in enumerate(bar):
        bar.set_postfix(row=key, seed=seed)
        if bar.disable:
            print(f"ablate {table.name}: run {i + 1}/{len(jobs)}: row {key}, seed {seed}", flush=True)
        result = run_row(plan, key, table_dir, seed, opts.segment_images, opts.segment_probe_images)
        if result.get("status") == "interrupted":
            results[key] = {**results.get(key, {}), "status": "interrupted"}
            break
        done = [r for r in runs.get(key, []) if r.get("seed") != result.get("seed")]
        runs[key] = [*done, result]
        results[key] = aggregate(runs[key])
        write_report(table, plan, results, table_dir, opts.supervised)  # partial tables are useful while waiting
    files = write_report(table, plan, results, table_dir, opts.supervised)
    return {"rows": results, "files": files, "table_dir": table_dir}

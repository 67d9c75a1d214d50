"""Run an ablation table: each row through the normal pre-training, resumably, then the report.

A row whose folder holds ``ablate.json`` is finished and never re-run; one with ``results.json``
is trained and only needs its evaluation; one with ``checkpoint_latest.pth`` was interrupted and
resumes from it (``resume=True``); any other row starts. The untrained encoder every row starts
from is measured once (``random_init.json``) as the table's reference line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from latentmim.ablate.evaluate import evaluate_random_init, evaluate_row
from latentmim.ablate.plan import AblateOptions, Plan, get_table, make_plan
from latentmim.ablate.report import markdown_table, plot_nn_against_time
from latentmim.ablate.tables import Table

ROW_RESULT = "ablate.json"
REFERENCE = "random_init.json"  # the untrained encoder, measured once per table


def run_row(plan: Plan, key: str, table_dir: Path) -> dict[str, Any]:
    """Train (or resume) and evaluate one row; returns its measured columns."""
    from latentmim.engine.pretrain import pretrain  # heavy import, only when training

    run_dir = table_dir / key
    done = run_dir / ROW_RESULT
    if done.exists():
        return json.loads(done.read_text())
    cfg = plan.row_config(key, table_dir)
    status = "finished"
    if not (run_dir / "results.json").exists():
        status = pretrain(cfg).get("status", "finished")
    if status == "interrupted":  # SIGTERM: the checkpoint is saved, the next call resumes
        return {"status": "interrupted"}
    result = {"status": status, **evaluate_row(cfg, run_dir, cfg.log.progress)}
    done.write_text(json.dumps(result, indent=2))
    return result


def write_report(table: Table, plan: Plan, results: dict[str, dict[str, Any]], table_dir: Path) -> dict[str, Path]:
    """``results.md``, ``results.json`` and ``nn_vs_time.png`` of the rows finished so far."""
    finished = {k: r for k, r in results.items() if r.get("status") != "interrupted"}
    md = table_dir / "results.md"
    md.write_text(markdown_table(table, plan, finished))
    js = table_dir / "results.json"
    paper = {r.key: r.paper for r in table.rows}
    rows = {k: r for k, r in finished.items() if k != "random_init"}
    js.write_text(json.dumps({"table": table.name, "dataset": plan.dataset, "model": plan.model,
                              "epochs": plan.epochs, "rows": rows, "random_init": finished.get("random_init"),
                              "paper": paper}, indent=2))
    png = plot_nn_against_time(table, finished, table_dir / "nn_vs_time.png")
    return {"markdown": md, "json": js, "png": png}


def run_table(name: str, opts: AblateOptions, overrides: list[str]) -> dict[str, Any]:
    """Plan, run every selected row, and write the report.

    Args:
        name: table name (:data:`~latentmim.ablate.tables.TABLES`).
        opts: the command's options.
        overrides: ``key=value`` config overrides applied to every row.

    Returns:
        ``{"rows": {key: measured columns}, "files": {...}, "table_dir": Path}``.
    """
    table = get_table(name)
    table_dir = Path(opts.output_dir) / table.name
    plan = make_plan(table, opts, overrides, table_dir)
    results: dict[str, dict[str, Any]] = {}
    reference = table_dir / REFERENCE
    if not reference.exists():
        cfg = plan.row_config(next(iter(plan.rows)), table_dir)
        reference.write_text(json.dumps({"status": "reference", **evaluate_random_init(cfg, cfg.log.progress)}))
    results["random_init"] = json.loads(reference.read_text())
    # Rows already finished in an earlier call also go into the report.
    for key in plan.rows:
        done = table_dir / key / ROW_RESULT
        if done.exists():
            results[key] = json.loads(done.read_text())
    keys = [r.key for r in table.rows if r.key in plan.rows and (not opts.row_keys or r.key in opts.row_keys)]
    bar = tqdm(keys, desc=f"ablate {table.name} ({plan.epochs} epochs/row)", unit="row")
    for key in bar:
        bar.set_postfix(row=key)
        results[key] = run_row(plan, key, table_dir)
        write_report(table, plan, results, table_dir)  # partial tables are useful while waiting
        if results[key].get("status") == "interrupted":
            break
    files = write_report(table, plan, results, table_dir)
    return {"rows": results, "files": files, "table_dir": table_dir}

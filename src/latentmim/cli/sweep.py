"""``latentmim pretrain -m key=a,b other=x,y``: Hydra basic-sweeper multirun, resumable point by point.

The sweep grammar is Hydra's (``a,b``, ``range(1,4)``, ``choice(...)``, ``glob(...)``): its public
override parser reads the command line, which expands into the cartesian product of points.
Each point is an ordinary run in ``<output_dir>/<job_name>/<key=value,...>/``; the sweep folder
(``<output_dir>/<job_name>``) holds ``sweep.json`` (the points) and ``summary.md`` /
``summary.json`` (swept keys, NN, k-NN, minutes, status), rewritten after every point.

Points run one after the other. Running the same command again continues the sweep: a point with
``results.json`` is not re-run, a point with a checkpoint resumes from it, the rest start fresh.
A point whose loss turns non-finite is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.config.schema import PretrainConfig

RESERVED = ("output_dir", "job_name", "resume")  # set per point by the sweep itself
SUMMARY = "summary.md"


def expand(overrides: list[str]) -> tuple[list[list[str]], list[str], list[str]]:
    """The sweep's points (full override lists), the swept keys and the fixed (unswept) overrides.

    Hydra's override parser (its public grammar: ``a,b``, ``range(1,4)``, ``choice(...)``,
    ``glob(...)``) reads the command line; the points are the cartesian product of the swept
    values, in command-line order, as Hydra's basic sweeper orders them. A key given twice keeps
    its first position and its last value.

    Raises:
        ConfigError: an override Hydra cannot parse, an ``interval(...)`` sweep (it needs an
            optimiser, not a grid), or a sweep over a reserved key.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"expected key=value overrides, got '{bad[0]}'")
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        choices: dict[str, list[str]] = {}  # key -> its "key=value" words, in command-line order
        for o in parsed:
            key = o.get_key_element()
            if o.is_sweep_override() and not o.is_discrete_sweep():
                raise ConfigError(f"sweep: '{o.input_line}': interval sweeps need an optimiser; "
                                  "give values (a,b,c) or range(start,stop,step)")
            values = o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()]
            choices[key] = [f"{key}={v}" for v in values]
    except HydraException as err:
        raise ConfigError(f"sweep: {str(err).strip().splitlines()[0]}") from None
    swept = [o.key_or_group for o in parsed if o.is_sweep_override()]
    for key in swept:
        if key in RESERVED:
            raise ConfigError(f"sweep: '{key}' cannot be swept; each point sets it (choose output_dir/job_name once)")
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    return [list(point) for point in itertools.product(*choices.values())], swept, fixed


def point_label(point: list[str], swept: list[str]) -> str:
    """Folder name of a point: its swept ``key=value`` pairs, e.g. ``lr=0.0005,num_vis=8``."""
    values = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in point}
    label = ",".join(f"{k}={values[k]}" for k in swept) or "point"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", label)


def _point_overrides(point: list[str], sweep_dir: Path, label: str, resume: bool) -> list[str]:
    kept = [o for o in point if o.split("=", 1)[0].lstrip("+~") not in RESERVED]
    # Quoted: a label holds '=' and ',' which Hydra's override grammar would otherwise parse.
    return [*kept, f"output_dir={_quote(str(sweep_dir))}", f"job_name={_quote(label)}", f"resume={resume}"]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _status(run_dir: Path) -> str:
    if (run_dir / "results.json").is_file():
        return "done"
    if (run_dir / "failed.txt").is_file():
        return "failed"
    if (run_dir / "checkpoint_latest.pth").is_file():
        return "started"
    return "new"


def _row(label: str, point: list[str], swept: list[str], run_dir: Path, status: str) -> dict[str, Any]:
    values = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in point}
    row: dict[str, Any] = {"point": label, **{k: values[k] for k in swept}, "status": status}
    if (run_dir / "results.json").is_file():
        res = json.loads((run_dir / "results.json").read_text())
        trained = res.get("trained", {})
        row["nn"] = trained.get("nn_loo")
        row["knn"] = next((v for k, v in trained.items() if k.startswith("knn")), None)
        row["minutes"] = round(res.get("train_time_s", 0.0) / 60, 2)
    return row


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]], swept: list[str]) -> None:
    """``summary.json`` and ``summary.md``: one row per point (swept keys, NN, kNN, minutes, status)."""
    (sweep_dir / "summary.json").write_text(json.dumps(rows, indent=2))
    cols = [*swept, "nn", "knn", "minutes", "status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r[c]:.2f}" if isinstance(r.get(c), float) else str(r.get(c, "-") if r.get(c) is not None else "-")
                 for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    (sweep_dir / SUMMARY).write_text("NN = LOO 1-NN on val, kNN = weighted k-NN (train -> val), minutes = "
                                     "training time of the last (resumed) segment\n\n" + "\n".join(lines) + "\n")


def run_sweep(config_name: str, overrides: list[str], run_one: Callable[[PretrainConfig], dict[str, Any]]) -> int:
    """Run every point of the sweep in turn; returns the exit code (0, or 3 when interrupted).

    Args:
        config_name: the named config every point starts from.
        overrides: the command line's ``key=value`` words, sweeps included.
        run_one: trains one validated config (the same path as a single ``pretrain``).
    """
    from latentmim.training.errors import NonFiniteLoss

    points, swept, fixed = expand(overrides)
    base = compose_config([o for o in fixed if o.split("=", 1)[0] != "resume"], config_name)
    sweep_dir = Path(base.run_dir)
    labels = [point_label(p, swept) for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError("sweep: two points share a folder name; sweep distinct values")
    # Compose every point before training any: a bad value fails the sweep up front, in one line.
    for point, label in zip(points, labels, strict=True):
        compose_config(_point_overrides(point, sweep_dir, label, False), config_name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.json").write_text(json.dumps(
        {"config_name": config_name, "overrides": overrides, "swept": swept,
         "points": [{"label": lab, "overrides": p} for p, lab in zip(points, labels, strict=True)]}, indent=2))
    rows = [_row(lab, p, swept, sweep_dir / lab, _status(sweep_dir / lab)) for p, lab in zip(points, labels, strict=True)]
    write_summary(sweep_dir, rows, swept)
    code = 0
    for i, (point, label) in enumerate(zip(points, labels, strict=True)):
        run_dir = sweep_dir / label
        status = _status(run_dir)
        print(f"[sweep {i + 1}/{len(points)}] {label}: " + {"done": "finished earlier, kept",
                                                              "failed": "failed earlier (failed.txt), skipped",
                                                              "started": "resuming", "new": "starting"}[status])
        if status in ("done", "failed"):
            continue
        cfg = compose_config(_point_overrides(point, sweep_dir, label, status == "started"), config_name)
        try:
            result = run_one(cfg)
        except NonFiniteLoss as err:
            print(f"latentmim: point {label} failed: {err}", file=sys.stderr)
            rows[i] = _row(label, point, swept, run_dir, "failed: non-finite loss")
            (run_dir / "failed.txt").write_text(str(err) + "\n")
            write_summary(sweep_dir, rows, swept)
            continue
        if result.get("status") in ("interrupted", "collapsed"):
            rows[i] = _row(label, point, swept, run_dir, str(result["status"]))
            write_summary(sweep_dir, rows, swept)
            if result["status"] == "interrupted":
                print(f"sweep interrupted at {label}; run the same command again to continue", file=sys.stderr)
                code = 3
                break
            continue
        rows[i] = _row(label, point, swept, run_dir, "done")
        write_summary(sweep_dir, rows, swept)
    print((sweep_dir / SUMMARY).read_text().rstrip())
    print(f"sweep folder: {sweep_dir}")
    return code

"""``latentmim eval all``: several checkpoints through several suites, one side-by-side report.

The suites are those of :data:`latentmim.eval.suites.SUITES` (``knn``, ``linear`` (``cached`` by
default here), ``fewshot``, ``finetune`` (only when asked for: it trains the whole network),
``segment`` and ``video``); each one's options are nested under its name (``knn.k=10``,
``segment.num_images=4``, ``video.davis_root=PATH``). ``suites=auto`` runs the classification
suites, plus ``segment`` when the data has ground-truth masks (``synthetic``) and ``video`` when
``video.davis_root`` is given. Each run writes its own folder ``output_dir/<name>/<suite>/``; the
report (``results.json``, ``results.md``, ``comparison.png``, ``fewshot.png``) goes to
``output_dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import AllEvalConfig, EvalCommon
from latentmim.config.extras import require
from latentmim.data.errors import DataError
from latentmim.eval.report import bar_chart, line_chart, markdown_table, write_results
from latentmim.eval.suites import EXTRA, SUITES
from latentmim.interop.load import INIT_PREFIX, load_pretrained
from latentmim.training.errors import NonFiniteLoss

CLASSIFICATION = ("knn", "linear", "fewshot")  # what suites=auto always runs


def checkpoint_names(specs: list[str], names: list[str]) -> list[str]:
    """Labels of the checkpoints: given ``names``, else their run folder (``init`` for init:)."""
    if names:
        out = list(names)
    else:
        out = []
        for spec in specs:
            path = Path(spec.removeprefix(INIT_PREFIX))
            label = path.parent.name or path.stem
            out.append(f"{label} (init)" if spec.startswith(INIT_PREFIX) else label)
    seen: dict[str, int] = {}
    for i, name in enumerate(out):  # make labels unique: a, a-2, a-3
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out[i] = f"{name}-{seen[name]}"
    return out


def _common(cfg: AllEvalConfig) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in fields(EvalCommon)}


def _eval_dataset(dataset: str | None, spec: str) -> str | None:
    """The dataset a suite will use for ``spec``: the given one, else the checkpoint's."""
    if dataset is not None:
        return dataset
    pre = load_pretrained(spec).config
    return pre.dataset if pre else None


def _changed_option(cfg: AllEvalConfig, suite: str) -> str | None:
    """The first ``suite.*`` key whose value differs from its default (None: all defaults)."""
    default = next(f for f in fields(AllEvalConfig) if f.name == suite).default_factory()  # type: ignore[misc]
    given = asdict(getattr(cfg, suite))
    return next((k for k, v in asdict(default).items() if given[k] != v), None)


def resolve_suites(cfg: AllEvalConfig) -> tuple[list[str], dict[str, str]]:
    """The suites to run and, for those left out, why.

    Raises:
        ConfigError: a ``suite.*`` key set for a suite that is not run, or a suite whose
            optional packages are not installed.
    """
    wanted = list(dict.fromkeys(cfg.suites))
    skipped: dict[str, str] = {}
    if "auto" in wanted:
        auto = list(CLASSIFICATION)
        datasets = {_eval_dataset(cfg.dataset, spec) for spec in cfg.checkpoint.split(",") if spec}
        if datasets == {"synthetic"}:
            auto.append("segment")  # ground-truth masks -> mIoU (figures only elsewhere)
        else:
            skipped["segment"] = f"auto: no ground-truth masks in {', '.join(sorted(map(str, datasets)))}"
        if cfg.video.davis_root is not None:
            auto.append("video")
        else:
            skipped["video"] = "auto: no video.davis_root given"
        skipped["finetune"] = "auto: trains the whole network; add it with suites=...,finetune"
        wanted = [s for s in wanted if s != "auto"] + [s for s in auto if s not in wanted]
    for suite in SUITES.values():
        if suite.options is None or suite.name in wanted:
            continue
        key = _changed_option(cfg, suite.name)
        if key is not None:
            raise ConfigError(f"config key '{suite.name}.{key}': suite '{suite.name}' is not run")
    for name in wanted:
        SUITES[name].check_installed()
    require("matplotlib", EXTRA, "eval all")  # comparison.png
    return wanted, {k: v for k, v in skipped.items() if k not in wanted}


def _suite_runner(suite: str, common: dict[str, Any], cfg: AllEvalConfig) -> Callable[[], dict[str, Any]]:
    """The suite's configuration for one checkpoint (built now: errors show before any run), run later."""
    entry = SUITES[suite]
    sub = entry.config(**common, **asdict(getattr(cfg, suite)))
    return lambda: entry.run(sub)


def run_all_eval(cfg: AllEvalConfig) -> dict[str, Any]:
    """Run the suites on every checkpoint and write the comparison report."""
    specs = [c for c in cfg.checkpoint.split(",") if c]
    for spec in specs:  # fail before the first suite runs, not halfway through the report
        if not Path(spec.removeprefix(INIT_PREFIX)).exists():
            raise ConfigError(f"checkpoint '{spec.removeprefix(INIT_PREFIX)}' does not exist")
    names = checkpoint_names(specs, list(cfg.names))
    out = Path(cfg.output_dir) if cfg.output_dir else Path(specs[0].removeprefix(INIT_PREFIX)).parent / "eval_all"
    suites, skipped = resolve_suites(cfg)
    plan = []  # every configuration is parsed before anything runs: bad keys fail fast
    for spec, name in zip(specs, names, strict=True):
        for suite in suites:
            common = {**_common(cfg), "checkpoint": spec, "output_dir": str(out / name / suite)}
            plan.append((name, suite, _suite_runner(suite, common, cfg)))
    explicit = set(cfg.suites) - {"auto"}
    table: dict[str, dict[str, float]] = {name: {} for name in names}
    details: dict[str, dict[str, Any]] = {name: {} for name in names}
    failed: dict[str, str] = {}
    for name, suite, run in plan:
        print(f"== {name}: {suite}")
        try:
            res = run()
        except (DataError, ConfigError) as err:
            if suite in explicit:
                raise
            skipped[suite] = f"{name}: {err}"  # auto-chosen suites whose data is missing
            continue
        except NonFiniteLoss as err:  # a diverged fine-tune: report it, keep the other suites' results
            failed[f"{name}/{suite}"] = str(err)
            continue
        numbers = SUITES[suite].headline(res)
        table[name].update(numbers)
        details[name][suite] = {"output_dir": res.get("output_dir"), "headline": numbers}
        if suite == "fewshot":
            details[name][suite]["datasets"] = res["datasets"]
    results = {"suite": "all", "checkpoints": dict(zip(names, specs, strict=True)), "suites": suites,
               "skipped": skipped, "failed": failed, "table": table, "details": details}
    columns = list(dict.fromkeys(k for row in table.values() for k in row))
    md = (f"# Comparison of {len(specs)} checkpoints\n\n"
          + "\n".join(f"- **{n}**: `{s}`" for n, s in zip(names, specs, strict=True))
          + "\n\nAccuracies in % (`nn_loo`: official LOO 1-NN; `knn*`: weighted k-NN; `linear_*`: "
          "linear probe; `<dataset>_<k>shot`: few-shot logistic regression, mean over seeds; "
          "`segment_miou_*`: unsupervised segmentation mIoU x100; `video_J&F` x100).\n\n"
          + markdown_table([{"checkpoint": n, **table[n]} for n in names], ["checkpoint", *columns])
          + "\n\n" + "".join(f"- {s} skipped: {why}\n" for s, why in skipped.items())
          + "".join(f"- {run} FAILED: {why}\n" for run, why in failed.items())
          + "Per-suite reports: `<checkpoint>/<suite>/results.md` in this folder.\n")
    write_results(out, results, md)
    charted = [c for c in columns if not c.endswith("top5")]  # top-1 style numbers only: readable
    if charted:
        groups = {c: {n: table[n][c] for n in names if c in table[n]} for c in charted}
        bar_chart(out / "comparison.png", groups, "checkpoints compared")
    _fewshot_figure(out, details)
    results["output_dir"] = str(out)
    return results


def _fewshot_figure(out: Path, details: dict[str, dict[str, Any]]) -> None:
    lines, shots = {}, None
    for name, suites in details.items():
        for ds, d in suites.get("fewshot", {}).get("datasets", {}).items():
            ks = sorted(int(k) for k in d["shots"])
            shots = ks
            lines[f"{name} / {ds}"] = ([d["shots"][str(k)]["mean"] for k in ks], [d["shots"][str(k)]["std"] for k in ks])
    if lines and shots:
        line_chart(out / "fewshot.png", shots, lines, "few-shot transfer", "shots per class", logx=True)

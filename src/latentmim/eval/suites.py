"""The evaluation suites, declared once: :data:`SUITES` maps a suite's name to everything about it.

A :class:`Suite` names the configuration class that ``latentmim eval NAME`` parses, the option
class that ``latentmim eval all`` nests under ``NAME.`` (``knn.k=10``), the optional packages the
suite imports, the function that runs it, how its results are printed and which of its numbers
go into the ``eval all`` comparison. The command line (dispatch, ``--help``, ``--cfg job``, shell
completion) and :mod:`latentmim.eval.compare` read this table; nothing else lists the suites.

The runners import their suite's module when called, so reading the table (``latentmim --help``,
completion, ``--cfg job``) stays fast and needs none of the optional packages::

    from latentmim.config.eval_load import parse_eval_config
    from latentmim.eval.suites import SUITES

    suite = SUITES["knn"]
    results = suite.run(parse_eval_config(suite.config, ["checkpoint=run/checkpoint_latest.pth"]))
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentmim.config.eval_schema import (
    AllEvalConfig,
    EvalCommon,
    FewshotEvalConfig,
    FewshotOptions,
    FinetuneEvalConfig,
    FinetuneOptions,
    KnnEvalConfig,
    KnnOptions,
    LinearEvalConfig,
    LinearOptions,
    SegmentEvalConfig,
    SegmentOptions,
    VideoEvalConfig,
    VideoOptions,
)
from latentmim.config.extras import require_all

Results = dict[str, Any]

EXTRA = "eval"  # the extra of latentmim that brings every suite's optional packages


@dataclass(frozen=True)
class Suite:
    """One evaluation suite of ``latentmim eval``.

    Attributes:
        name: the word after ``latentmim eval``.
        summary: one line for ``latentmim eval --help``.
        config: the configuration class that ``latentmim eval NAME key=value ...`` parses.
        options: the suite's own keys, nested as ``NAME.key`` under ``latentmim eval all`` (its
            field of :class:`~latentmim.config.eval_schema.AllEvalConfig`); None for ``all``.
        run: runs a parsed configuration; returns the results (with ``output_dir``).
        show: prints the results at the end of the command; returns the exit code.
        headline: the numbers of the results that go into the ``eval all`` table (in %).
        needs: import names of the optional packages it uses, all from the ``[eval]`` extra.
    """

    name: str
    summary: str
    config: type[EvalCommon]
    options: type | None
    run: Callable[[Any], Results]
    show: Callable[[Results], int]
    headline: Callable[[Results], dict[str, float]]
    needs: tuple[str, ...] = ()

    def check_installed(self) -> None:
        """Raise one ConfigError line naming the extra when a package it needs is missing."""
        require_all(self.needs, EXTRA, f"eval {self.name}")


# ------------------------------------------------------------------------------------ runners
def _run_knn(cfg: KnnEvalConfig) -> Results:
    from latentmim.eval.knn.suite import run_knn_eval

    return run_knn_eval(cfg)


def _run_linear(cfg: LinearEvalConfig) -> Results:
    from latentmim.eval.linear.suite import run_linear_eval

    return run_linear_eval(cfg)


def _run_finetune(cfg: FinetuneEvalConfig) -> Results:
    from latentmim.eval.finetune.suite import run_finetune_eval

    return run_finetune_eval(cfg)


def _run_fewshot(cfg: FewshotEvalConfig) -> Results:
    from latentmim.eval.fewshot.suite import run_fewshot_eval

    return run_fewshot_eval(cfg)


def _run_segment(cfg: SegmentEvalConfig) -> Results:
    from latentmim.eval.dense.segment import run_segment_eval

    return run_segment_eval(cfg)


def _run_video(cfg: VideoEvalConfig) -> Results:
    from latentmim.eval.dense.video import run_video_eval

    return run_video_eval(cfg)


def _run_all(cfg: AllEvalConfig) -> Results:
    from latentmim.eval.compare import run_all_eval

    return run_all_eval(cfg)


# ----------------------------------------------------------------------------------- printers
def _print_report(results: Results) -> int:
    """``results.md`` and the files beside it (results.json, figures)."""
    from latentmim.eval.report import print_summary

    print_summary(results["output_dir"])
    return 0


def _print_dense(files: str) -> Callable[[Results], int]:
    """``results.md``, then where ``files`` are (the dense suites write one figure per image)."""

    def show(results: Results) -> int:
        out = Path(results["output_dir"])
        print((out / "results.md").read_text().rstrip())
        print(f"{files} in {out}")
        return 0

    return show


def _print_comparison(results: Results) -> int:
    """The comparison table; exit code 2 when a run diverged (the rest of the report stands)."""
    _print_report(results)
    failed = results["failed"]
    if not failed:
        return 0
    first, why = next(iter(failed.items()))
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    print(f"latentmim: error: eval all: {first} failed{more}: {why}; the other results are in "
          f"{results['output_dir']}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------- headlines
def _knn_headline(res: Results) -> dict[str, float]:
    return dict(res["scores"])


def _top_k(suite: str) -> Callable[[Results], dict[str, float]]:
    def headline(res: Results) -> dict[str, float]:
        return {f"{suite}_{k}": v for k, v in res["scores"].items() if k.startswith("top")}

    return headline


def _fewshot_headline(res: Results) -> dict[str, float]:
    return {f"{ds}_{k}shot": r["mean"] for ds, d in res["datasets"].items() for k, r in d["shots"].items()}


def _segment_headline(res: Results) -> dict[str, float]:
    enc = res.get("miou", {}).get("encoder", {})
    return {f"segment_miou_{k}": 100.0 * v for k, v in enc.items()}  # fractions -> %


def _video_headline(res: Results) -> dict[str, float]:
    enc = res.get("summary", {}).get("encoder", {})
    return {"video_J&F": 100.0 * enc["J&F"]} if "J&F" in enc else {}


def _no_headline(res: Results) -> dict[str, float]:
    return {}


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("knn", "leave-one-out 1-NN (the paper's NN) and weighted k-NN on frozen features",
          KnnEvalConfig, KnnOptions, _run_knn, _print_report, _knn_headline),
    Suite("linear", "linear probe (MAE's LARS recipe; mode=cached: on cached features)",
          LinearEvalConfig, LinearOptions, _run_linear, _print_report, _top_k("linear"),
          needs=("matplotlib",)),
    Suite("finetune", "MAE fine-tuning of the whole network on timm's ViT",
          FinetuneEvalConfig, FinetuneOptions, _run_finetune, _print_report, _top_k("finetune"),
          needs=("matplotlib",)),
    Suite("fewshot", "k-shot logistic regression on frozen features (CoOp datasets)",
          FewshotEvalConfig, FewshotOptions, _run_fewshot, _print_report, _fewshot_headline,
          needs=("sklearn", "matplotlib")),
    Suite("segment", "unsupervised segmentation by clustering patch features, t-SNE figures",
          SegmentEvalConfig, SegmentOptions, _run_segment, _print_dense("figures and results.json"),
          _segment_headline, needs=("sklearn", "scipy", "matplotlib")),
    Suite("video", "DAVIS-2017 video object segmentation by label propagation (J&F)",
          VideoEvalConfig, VideoOptions, _run_video, _print_dense("masks, figures and results.json"),
          _video_headline, needs=("scipy", "matplotlib")),
    Suite("all", "several checkpoints through several suites, one comparison report",
          AllEvalConfig, None, _run_all, _print_comparison, _no_headline, needs=("matplotlib",)),
)}

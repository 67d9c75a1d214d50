"""``latentmim eval all``: argument routing, checkpoint labels, and one side-by-side report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentmim.cli.main import main
from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import AllEvalConfig
from latentmim.config.load import compose_config
from latentmim.eval.compare import checkpoint_names


def test_suite_keys_are_nested_and_labels_are_unique() -> None:
    cfg = parse_eval_config(AllEvalConfig, ["checkpoint=a", "knn.k=5", "segment.num_images=2", "video.topk=3",
                                            "segment.clusters=2,3"])
    assert (cfg.knn.k, cfg.segment.num_images, cfg.video.topk, cfg.segment.clusters) == (5, 2, 3, [2, 3])
    with pytest.raises(ConfigError, match="config key 'segment.clusters': need cluster counts >= 2"):
        parse_eval_config(AllEvalConfig, ["checkpoint=a", "segment.clusters=1"])
    with pytest.raises(ConfigError, match="config key 'dataset': 'cifar10' has no videos; give video.davis_root"):
        parse_eval_config(AllEvalConfig, ["checkpoint=a", "suites=video", "dataset=cifar10"])
    parse_eval_config(AllEvalConfig, ["checkpoint=a", "dataset=cifar10"])  # auto runs video on DAVIS only
    assert checkpoint_names(["r1/a/ckpt.pth", "init:r1/a/ckpt.pth", "r2/a/ckpt.pth"], []) == ["a", "a (init)", "a-2"]
    assert checkpoint_names(["x.pth", "y.pth"], ["one", "two"]) == ["one", "two"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import TINY
    from latentmim.engine.pretrain import pretrain

    out = tmp_path_factory.mktemp("ckpt")
    pretrain(compose_config([*TINY, f"output_dir={out}", "job_name=run", "epochs=1", "warmup_epochs=0"]))
    return out / "run" / "checkpoint_latest.pth"


def test_two_checkpoints_one_report(ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suites = "knn,fewshot,segment"
    out = tmp_path / "report"
    argv = ["eval", "all", f"checkpoint={ckpt},init:{ckpt}", f"suites={suites}", "knn.k=5", "fewshot.shots=1,2",
            "fewshot.seeds=1,2", "workers=0", "progress=false", f"output_dir={out}"]
    argv += ["segment.num_images=1", "segment.tsne=false"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| run |" in printed and "| run (init) |" in printed
    report = json.loads((out / "results.json").read_text())
    assert report["checkpoints"] == {"run": str(ckpt), "run (init)": f"init:{ckpt}"}
    for name in ("run", "run (init)"):
        knn = json.loads((out / name / "knn" / "results.json").read_text())
        assert report["table"][name]["knn5_top1"] == knn["scores"]["knn5_top1"]
        assert report["table"][name]["nn_loo"] == knn["scores"]["nn_loo"]
        fewshot = json.loads((out / name / "fewshot" / "results.json").read_text())
        assert report["table"][name]["synthetic_2shot"] == fewshot["datasets"]["synthetic"]["shots"]["2"]["mean"]
    assert "segment_miou_best_k" in report["table"]["run"]
    for png in ("comparison.png", "fewshot.png"):
        assert (out / png).stat().st_size > 1000


def test_a_diverging_finetune_is_one_line_and_the_other_suites_are_kept(ckpt: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report"
    argv = ["eval", "all", f"checkpoint={ckpt}", "suites=knn,finetune", "knn.k=5", "finetune.lr=1e30",
            "finetune.epochs=1", "finetune.warmup_epochs=0", "finetune.batch_size=8", "finetune.mixup=0",
            "finetune.cutmix=0", "finetune.aa=null", "train_images=16", "val_images=8", "workers=0",
            "progress=false", f"output_dir={out}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "run/finetune failed" in err and "non-finite" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    report = json.loads((out / "results.json").read_text())
    assert "run/finetune" in report["failed"] and "nn_loo" in report["table"]["run"]

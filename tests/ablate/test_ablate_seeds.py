"""Seeds, error bars, the paper's orderings, the supervised ceiling and the raw-pixel floor."""

import json
import statistics

import pytest
import torch
import yaml

from latentmim.ablate.report import verdict
from latentmim.ablate.runner import aggregate
from latentmim.ablate.tables import TABLES, Ordering
from latentmim.cli.main import main
from latentmim.runtime.checkpoint import load_checkpoint

DATA = ["synthetic.num_train=96", "synthetic.num_val=48", "nn_train_images=96", "nn_val_images=48",
        "env.workers=0", "log.progress=false", "log.curves=false"]


def test_aggregate_is_mean_and_sample_std_over_seeds():
    runs = [{"status": "finished", "seed": s, "nn": v, "lp": 50.0 + s, "sim_trg": None} for s, v in enumerate([60, 64, 65])]
    agg = aggregate(runs)
    assert agg["n_seeds"] == 3 and agg["nn"] == pytest.approx(63.0)
    assert agg["nn_std"] == pytest.approx(statistics.stdev([60, 64, 65]))
    assert agg["lp"] == pytest.approx(51.0) and agg["sim_trg"] is None
    # a diverged seed is counted out, not averaged in
    agg = aggregate([*runs, {"status": "diverged", "seed": 3}])
    assert agg["n_seeds"] == 3 and agg["diverged_seeds"] == 1


def _row(nn, std, n=3, **extra):
    return {"nn": nn, "nn_std": std, "n_seeds": n, **extra}


@pytest.mark.parametrize("a,b,at_least,expected", [
    (_row(70.0, 0.5), _row(65.0, 0.5), False, "holds"),  # gap 5 > 2 std = 1
    (_row(65.0, 0.5), _row(70.0, 0.5), False, "reversed"),
    (_row(70.0, 2.0), _row(68.0, 0.5), False, "within noise"),  # gap 2 < 2 * max std = 4
    (_row(70.0, 2.0), _row(68.0, 0.5), True, "within noise (>= holds)"),
    (_row(70.0, 0.0, n=1), _row(68.0, 0.0, n=1), False, "holds (1 seed)"),
    (_row(66.0, 0.0, n=1), _row(68.0, 0.0, n=1), False, "does not hold (1 seed)"),
])
def test_ordering_verdicts(a, b, at_least, expected):
    measured, noise, holds = verdict(Ordering("a", "b", "a > b", at_least=at_least), {"a": a, "b": b})
    assert holds == expected
    assert measured == f"{a['nn']:.1f} vs {b['nn']:.1f} ({a['nn'] - b['nn']:+.1f})"


def test_collapse_ordering_reads_the_target_similarity():
    order = TABLES["collapse"].orderings[0]
    assert order.collapse and order.better == "naive"
    assert verdict(order, {"naive": {"sim_trg": 0.99}, "momentum": {}})[2] == "holds"
    assert verdict(order, {"naive": {"sim_trg": 0.40}, "momentum": {}})[2].startswith("does not hold")
    assert verdict(order, {})[2] == "not run"


@pytest.mark.slow
def test_two_seeds_with_supervised_ceiling_floor_and_segmentation(tmp_path, capsys):
    words = ["ablate", "headline", "model=tiny", "dataset=synthetic", "epochs=1", "rows=lmim,mae,supervised",
             "seeds=2", "segment_images=2", f"output_dir={tmp_path}", *DATA]
    assert main(words) == 0
    table_dir = tmp_path / "headline"
    results = json.loads((table_dir / "results.json").read_text())
    assert set(results["rows"]) == {"lmim", "mae", "supervised"}
    for key, row in results["rows"].items():
        runs = [json.loads((table_dir / name / "ablate.json").read_text()) for name in (key, f"{key}_s1")]
        assert row["n_seeds"] == 2
        assert row["nn"] == pytest.approx(statistics.fmean(r["nn"] for r in runs))
        assert row["nn_std"] == pytest.approx(statistics.stdev(r["nn"] for r in runs))
        assert [r["seed"] for r in runs] == [0, 1]
        assert 0 <= row["miou"] <= 100  # segmentation mIoU on synthetic's ground-truth masks
    # seed 1 trains other weights on the same images
    cfg0 = yaml.safe_load((table_dir / "lmim" / "config.yaml").read_text())
    cfg1 = yaml.safe_load((table_dir / "lmim_s1" / "config.yaml").read_text())
    assert cfg1["env"]["seed"] == 1 and cfg1["synthetic"]["seed"] == 0 and cfg0["env"]["seed"] == 0
    w0 = load_checkpoint(table_dir / "lmim" / "checkpoint_latest.pth")["model"]["encoder.blocks.0.mlp.fc1.weight"]
    w1 = load_checkpoint(table_dir / "lmim_s1" / "checkpoint_latest.pth")["model"]["encoder.blocks.0.mlp.fc1.weight"]
    assert not torch.equal(w0, w1)
    # the supervised ceiling trains with labels
    sup = yaml.safe_load((table_dir / "supervised" / "config.yaml").read_text())
    assert sup["method"] == "supervised"
    assert "train_acc" in (table_dir / "supervised" / "metrics.jsonl").read_text()
    # the floor and the report
    assert 0 <= results["raw_pixels"]["nn"] <= 100 and "lp" in results["raw_pixels"]
    md = (table_dir / "results.md").read_text()
    assert "| Raw pixels (floor) |" in md and "Supervised ceiling" in md and " ± " in md
    assert "| Latent MIM > MAE (NN) |" in md and "holds?" in md
    assert "probe sem." not in md  # the probe's columns appear only where it was measured

    # Asking for the linear probe later re-scores the finished rows without training them again.
    ckpt = table_dir / "lmim_s1" / "checkpoint_latest.pth"
    before = ckpt.stat().st_mtime_ns, json.loads((table_dir / "lmim_s1" / "ablate.json").read_text())
    assert main([*words, "segment_probe_images=6"]) == 0
    after = json.loads((table_dir / "lmim_s1" / "ablate.json").read_text())
    assert ckpt.stat().st_mtime_ns == before[0]
    assert after["nn"] == before[1]["nn"] and after["miou"] == pytest.approx(before[1]["miou"])
    assert after["segment_probe_images"] == 6 and 0 < after["probe_semantic"] <= 100
    res = json.loads((out := table_dir / "lmim_s1" / "eval_segment" / "results.json").read_text())
    assert after["probe_foreground"] == pytest.approx(100 * res["probe"]["encoder"]["foreground"]), out
    results = json.loads((table_dir / "results.json").read_text())
    runs = [json.loads((table_dir / n / "ablate.json").read_text())["probe_semantic"] for n in ("mae", "mae_s1")]
    assert results["rows"]["mae"]["probe_semantic"] == pytest.approx(statistics.fmean(runs))
    md = (table_dir / "results.md").read_text()
    assert "probe sem. mIoU" in md and "| Latent MIM > MAE (linear probe, semantic mIoU) |" in md

"""``latentmim ablate`` end to end on a tiny model: table, PNG, no re-runs, resume of a killed row."""

import json
from pathlib import Path

import matplotlib.image
import pytest

from latentmim.ablate.plan import AblateOptions, make_plan
from latentmim.ablate.runner import run_table
from latentmim.ablate.tables import TABLES
from latentmim.cli.main import main
from latentmim.config.errors import ConfigError
from latentmim.engine.pretrain import pretrain

# 96 synthetic 40-px images (8x8 grid of 4-px patches at 32 px), batches of 32: 3 steps per epoch.
DATA = ["synthetic.num_train=96", "synthetic.num_val=48", "nn_train_images=96", "nn_val_images=48",
        "env.workers=0", "log.progress=false", "log.curves=false"]


@pytest.mark.slow
def test_two_row_table_end_to_end_then_nothing_is_rerun(tmp_path, capsys):
    words = ["ablate", "collapse", "model=tiny", "dataset=synthetic", "epochs=2", "rows=naive,mae",
             f"output_dir={tmp_path}", *DATA]
    assert main(words) == 0
    out = capsys.readouterr().out
    table_dir = tmp_path / "collapse"
    md = (table_dir / "results.md").read_text()
    assert md in out.replace("\r", "") or md.strip() in out
    main_table, orderings = md.split("Paper's orderings")
    lines = [line for line in main_table.splitlines() if line.startswith("| ")]
    assert len(lines) == 5  # header, raw pixels, the random-init reference, naive, MAE (no other row asked for)
    assert lines[1].startswith("| Raw pixels (floor) | - | - | - |")
    assert lines[2].startswith("| Random-init encoder (no training) | - | - |")
    assert lines[3].startswith("| Naive Latent-MIM") and lines[3].endswith("| 1.00 | 0.9 | 7.9 | - |")
    assert lines[4].startswith("| MAE [13] |") and lines[4].endswith("| 0.67 | 30.0 | 70.4 | 88.3 |")
    # the collapse claim is judged from the naive row's S(targets); rows not run say so
    assert "| naive targets collapse | S(trg) " in orderings and "| momentum > stop-grad (NN) | - | - | not run |" in orderings
    results = json.loads((table_dir / "results.json").read_text())
    assert set(results["rows"]) == {"naive", "mae"} and results["epochs"] == 2
    for key, row in results["rows"].items():
        assert 0 <= row["nn"] <= 100 and 0 <= row["lp"] <= 100 and 0 <= row["sim_enc"] <= 1
        assert len(row["nn_curve"]) == 2  # one NN evaluation per epoch
        assert row["nn_curve"][0][0] < row["nn_curve"][1][0]  # training time grows
        assert row["nn_curve"][-1][1] == pytest.approx(
            json.loads((table_dir / key / "eval.jsonl").read_text().splitlines()[-1])["nn_loo"])
    assert results["rows"]["mae"]["sim_trg"] is None  # MAE has no latent targets
    assert results["rows"]["naive"]["sim_trg"] > 0  # the latent rows log S(targets)
    assert 0 <= results["random_init"]["nn"] <= 100
    img = matplotlib.image.imread(table_dir / "nn_vs_time.png")
    assert img.ndim == 3 and img.shape[0] > 100
    # the same command again: both rows are finished, nothing trains, the table is rewritten
    ckpt = table_dir / "naive" / "checkpoint_latest.pth"
    stamp = ckpt.stat().st_mtime_ns
    assert main(words) == 0
    assert ckpt.stat().st_mtime_ns == stamp
    assert "epoch 1:" not in capsys.readouterr().out
    # a different model in the same folder is refused instead of mixing two tables
    assert main([*words[:2], "model=small", *words[3:]]) == 2


@pytest.mark.slow
def test_interrupted_row_resumes_from_its_checkpoint(tmp_path, capsys):
    opts = AblateOptions(model="tiny", dataset="synthetic", epochs=2, output_dir=str(tmp_path), rows="momentum")
    overrides = [*DATA, "ckpt_steps=1"]
    table_dir = tmp_path / "collapse"
    plan = make_plan(TABLES["collapse"], opts, overrides, table_dir)
    # the run is killed after 4 of its 6 steps (a mid-epoch checkpoint was written at step 4)
    assert pretrain(plan.row_config("momentum", table_dir), stop_at_step=3)["status"] == "interrupted"
    capsys.readouterr()
    out = run_table("collapse", opts, [*overrides, "log.print_freq=2"])  # runtime keys may change
    assert "resumed from" in capsys.readouterr().out
    assert out["rows"]["momentum"]["epochs"] == 2
    steps = [json.loads(line)["step"] for line in (table_dir / "momentum" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6
    with pytest.raises(ConfigError, match="planned with dataset=synthetic"):
        make_plan(TABLES["collapse"], AblateOptions(dataset="fashion_mnist", output_dir=str(tmp_path)), overrides,
                  table_dir)
    assert Path(out["files"]["png"]).is_file()


@pytest.mark.slow
def test_budget_gives_every_row_the_same_epochs_from_timed_steps(tmp_path):
    opts = AblateOptions(model="tiny", dataset="synthetic", budget_min=0.5, output_dir=str(tmp_path),
                         rows="naive,mae", calibrate_steps=1)
    plan = make_plan(TABLES["collapse"], opts, DATA, tmp_path / "collapse")
    assert set(plan.seconds_per_epoch) == {"naive", "mae"} and min(plan.seconds_per_epoch.values()) > 0
    # 30 s x 0.9 shared by two rows, divided by the slowest row's epoch
    assert plan.epochs == max(1, int(13.5 // max(plan.seconds_per_epoch.values())))
    saved = json.loads((tmp_path / "collapse" / "plan.json").read_text())
    assert saved["epochs"] == plan.epochs and saved["budget_min"] == 0.5
    assert not (tmp_path / "collapse" / "naive").exists()  # timing trains nothing to disk

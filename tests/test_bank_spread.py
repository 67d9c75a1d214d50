"""``tools/bank_spread.py``: bank 0 is the NN monitor's own bank, the others are other draws."""

import re
import subprocess
import sys
from pathlib import Path

import torch

from latentmim.config.load import compose_config
from latentmim.engine.data import build_monitor_loaders
from latentmim.probing.nn_monitor import raw_pixel_nn_scores

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["synthetic.num_train=300", "synthetic.num_val=60", "nn_train_images=100", "nn_val_images=60",
         "synthetic.seed=0"]


def test_bank_zero_reproduces_the_monitors_floor_and_the_spread_is_printed():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bank_spread.py"), "--banks", "3", *SMALL],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    banks = [float(v) for v in re.findall(r"bank \d+: raw pixels knn20_top1 ([\d.]+)", proc.stdout)]
    assert len(banks) == 3 and "3 banks of 100 of 300 training images" in proc.stdout
    # the monitor draws its bank with data_seed (= synthetic.seed = 0): the tool's bank 0
    cfg = compose_config(SMALL)
    bank, val = build_monitor_loaders(cfg, torch.device("cpu"))
    floor = raw_pixel_nn_scores(bank, val, 10, torch.device("cpu"), cfg.knn_k, cfg.knn_t)["knn20_top1"]
    assert abs(banks[0] - floor) < 0.006  # printed to 2 decimals
    assert len(set(banks)) > 1  # other draws, other floors (100 of 300 images)


def test_a_checkpoint_is_scored_on_the_same_banks_with_its_gap(tiny):
    import json

    from latentmim.engine.pretrain import pretrain

    cfg = compose_config([*tiny, "epochs=1", "baselines=true", "nn_train_images=40"])
    results = pretrain(cfg)
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "bank_spread.py"), "--banks", "2", "--checkpoint",
                           str(Path(cfg.run_dir) / "checkpoint_latest.pth")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.findall(r"bank (\d): raw pixels knn20_top1 ([\d.]+)  trained ([\d.]+)  gap ([+-][\d.]+)", proc.stdout)
    assert len(rows) == 2, proc.stdout
    _, raw0, trained0, gap0 = (float(v) for v in rows[0])
    # bank 0 is the run's own monitor bank: the run's final scores, and the gap is their difference
    saved = json.loads((Path(cfg.run_dir) / "results.json").read_text())
    assert abs(trained0 - saved["trained"]["knn20_top1"]) < 0.006 and saved["trained"] == results["trained"]
    assert abs(raw0 - saved["raw_pixels"]["knn20_top1"]) < 0.006
    assert abs(gap0 - (trained0 - raw0)) < 0.011 and "gap" in proc.stdout.splitlines()[-1]

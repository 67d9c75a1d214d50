"""End to end on real Fashion-MNIST: a briefly pre-trained encoder beats its random initialisation.

Pre-training: the tiny-ish ViT below, 3 epochs on a fixed 4000-image subset of the training set
(written as IDX files, read by the ordinary ``fashion_mnist`` dataset), about half a minute on
one CPU core. Evaluation: ``latentmim eval all`` on the checkpoint and on ``init:`` the same
checkpoint (the exact encoder the run started from), k-NN (both protocols) and the cached linear
probe on 2000 official test images. Measured when written (2 shared cores): trained / init
nn_loo 64.3 / 57.4, knn20_top1 66.4 / 60.7, linear_top1 71.2 / 65.9.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import AllEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.idx import encode_idx, read_idx
from latentmim.engine.pretrain import pretrain
from latentmim.eval.compare import run_all_eval

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def fmnist_subset(dst: Path, n: int) -> Path:
    """``n`` random training images (seed 0) plus the official test set, as IDX files."""
    dst.mkdir(parents=True)
    x = read_idx(FMNIST / "train-images-idx3-ubyte.gz")
    y = read_idx(FMNIST / "train-labels-idx1-ubyte.gz")
    keep = np.random.default_rng(0).permutation(len(y))[:n]
    (dst / "train-images-idx3-ubyte").write_bytes(encode_idx(x[keep]))
    (dst / "train-labels-idx1-ubyte").write_bytes(encode_idx(y[keep]))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (dst / name).write_bytes((FMNIST / name).read_bytes())
    return dst


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FMNIST), reason="needs Debian's dataset-fashion-mnist")
def test_pretrained_encoder_beats_its_initialisation(tmp_path: Path) -> None:
    data = fmnist_subset(tmp_path / "fmnist4k", 4000)
    cfg = compose_config([
        "dataset=fashion_mnist", f"data_path={data}", "encoder=vit_tiny", "embed_dim=64", "depth=4",
        "num_heads=4", "patch_size=4", "grid_size=7", "patch_gap=1", "num_vis=10", "decoder_embed_dim=64",
        "decoder_num_heads=4", "decoder_depth=1", "proj.mlp_dim=128", "proj.mlp_depth=2", "batch_size=64",
        "epochs=3", "warmup_epochs=1", "lr=1e-3", "env.workers=0", "log.progress=false",
        "log.tensorboard=false", "log.curves=false", "baselines=false", "eval_freq=3",
        "nn_train_images=500", "nn_val_images=500", f"output_dir={tmp_path}", "job_name=fm",
    ])
    pretrain(cfg)
    ckpt = Path(cfg.run_dir) / "checkpoint_latest.pth"

    out = tmp_path / "compare"
    args = [f"checkpoint={ckpt},init:{ckpt}", "names=trained,init", "suites=knn,linear", "val_images=2000",
            "linear.mode=cached", "linear.feature=avgpool", "linear.epochs=10", "linear.warmup_epochs=1",
            "linear.blr=50", "workers=0", "progress=false", f"output_dir={out}"]
    results = run_all_eval(parse_eval_config(AllEvalConfig, args))
    trained, init = results["table"]["trained"], results["table"]["init"]
    print("\ntrained:", trained, "\ninit:   ", init)
    for key in ("nn_loo", "knn20_top1", "linear_top1"):
        assert trained[key] > init[key], (key, trained[key], init[key])
    assert trained["nn_loo"] > 30 and init["nn_loo"] > 30  # both far above chance (10%)

    saved = json.loads((out / "results.json").read_text())
    assert saved["table"] == results["table"]
    assert (out / "comparison.png").stat().st_size > 0
    assert "| trained |" in (out / "results.md").read_text()
    knn = json.loads((out / "trained" / "knn" / "results.json").read_text())
    assert knn["dataset"] == "fashion_mnist" and knn["num_train"] == 4000 and knn["num_val"] == 2000

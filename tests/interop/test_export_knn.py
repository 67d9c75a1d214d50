"""A user who exports a run and scores it with plain timm gets the run's own NN numbers.

The run reports LOO 1-NN and weighted 20-NN on its monitor images. Here the exported folder is
loaded with ``timm.create_model`` alone, used as timm users use it (``model(x)``), and scored by
a naive k-NN written out below (no latentmim code in the feature path or the vote).
"""

import json

import pytest
import timm
import torch
import torch.nn.functional as F

from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.engine.data import build_monitor_loaders
from latentmim.engine.pretrain import pretrain

# The demo's model (64 wide, 4 blocks, 4x4 grid of 8-px patches), a short run on few images.
SHORT = ["epochs=1", "synthetic.num_train=512", "synthetic.num_val=120", "nn_train_images=256",
         "nn_val_images=120", "batch_size=64", "eval_freq=1", "baselines=false", "log.progress=false",
         "log.tensorboard=false", "log.curves=false", "env.workers=0"]


def naive_loo_1nn(x: torch.Tensor, y: torch.Tensor) -> float:
    x = F.normalize(x.double(), dim=1)
    sim = x @ x.T
    sim.fill_diagonal_(-float("inf"))
    return 100.0 * (y[sim.argmax(dim=1)] == y).double().mean().item()


def naive_weighted_knn(bank: torch.Tensor, bank_y: torch.Tensor, q: torch.Tensor, q_y: torch.Tensor,
                       classes: int, k: int = 20, t: float = 0.07) -> float:
    bank, q = F.normalize(bank.double(), dim=1), F.normalize(q.double(), dim=1)
    correct = 0
    for i in range(q.shape[0]):
        sims = bank @ q[i]
        top = sims.topk(k)
        votes = torch.zeros(classes, dtype=torch.double)
        for s, j in zip(top.values, top.indices, strict=True):
            votes[bank_y[j]] += torch.exp(s / t)
        correct += int(votes.argmax() == q_y[i])
    return 100.0 * correct / q.shape[0]


@pytest.mark.slow
def test_knn_through_plain_timm_equals_the_runs_reported_nn(tmp_path):
    cfg = compose_config([*SHORT, f"output_dir={tmp_path}"])
    trained = pretrain(cfg)["trained"]
    out = tmp_path / "export"
    assert main(["export", f"checkpoint={cfg.run_dir}", f"output={out}"]) == 0
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()  # timm alone from here
    bank_loader, val_loader = build_monitor_loaders(cfg, torch.device("cpu"))
    feats = {}
    with torch.no_grad():
        for name, loader in (("bank", bank_loader), ("val", val_loader)):
            xs, ys = zip(*[(model(imgs), labels) for imgs, labels, _ in loader], strict=True)
            feats[name] = (torch.cat(xs), torch.cat(ys))
    (bank, bank_y), (val, val_y) = feats["bank"], feats["val"]
    assert bank.shape == (256, 64) and val.shape == (120, 64)
    assert naive_loo_1nn(val, val_y) == pytest.approx(trained["nn_loo"], abs=1e-9)
    assert naive_weighted_knn(bank, bank_y, val, val_y, 10) == pytest.approx(trained["knn20_top1"], abs=1e-9)
    assert "NN feature" in json.loads((out / "config.json").read_text())["latentmim"]["feature"]

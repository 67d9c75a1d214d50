"""Linear probe: LARS by hand, both modes on separable data, resume, and the suite end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import LinearEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.transforms import eval_transform, train_transform
from latentmim.eval.linear.feature_sources import AugmentedFeatures, CachedFeatures
from latentmim.eval.linear.head import LinearProbeHead
from latentmim.eval.linear.lars import build_lars
from latentmim.eval.linear.suite import LinearProbe, run_linear_eval
from latentmim.runtime.checkpoint import load_checkpoint


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lars_two_steps_match_hand_computation(wd) -> None:
    # MAE's rule (trust ratio eta * ||p|| / ||g + wd p|| on matrices, plain steps for vectors); timm
    # divides by ||g|| + wd ||p|| instead, which is the same rule at MAE's probe setting wd = 0.
    w0 = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # ||w|| = 5
    w, b = nn.Parameter(w0.clone()), nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = build_lars([w, b], lr=0.5, weight_decay=wd, momentum=0.9, trust_coefficient=0.01)
    gw, gb = torch.tensor([[1.0, 2.0], [2.0, -1.0]]), torch.tensor([0.5, 2.0])  # ||gw|| = sqrt(10)

    def ratio(p, g):
        mae = 0.01 * p.norm() / (g + wd * p).norm()
        timm_rule = 0.01 * p.norm() / (g.norm() + wd * p.norm() + 1e-8)
        if wd == 0:
            assert mae.item() == pytest.approx(timm_rule.item(), rel=1e-6)
        return timm_rule

    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    assert ratio(w0, gw).item() == pytest.approx(0.01 * 5 / (10**0.5 + wd * 5), rel=1e-6)  # by hand
    mu_w = ratio(w0, gw) * (gw + wd * w0)
    expected_w = w0 - 0.5 * mu_w
    expected_b = torch.tensor([1.0, -1.0]) - 0.5 * gb  # the bias: no decay, no trust ratio
    torch.testing.assert_close(w.detach(), expected_w)
    torch.testing.assert_close(b.detach(), expected_b)

    # Second step: heavy-ball momentum mu = 0.9 mu + d, with the new weight's norm.
    w.grad, b.grad = gw.clone(), gb.clone()
    opt.step()
    mu_w2 = 0.9 * mu_w + ratio(expected_w, gw) * (gw + wd * expected_w)
    torch.testing.assert_close(w.detach(), expected_w - 0.5 * mu_w2)
    torch.testing.assert_close(b.detach(), expected_b - 0.5 * (0.9 * gb + gb))


def test_lars_zero_weight_keeps_raw_step() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    opt = build_lars([w], lr=1.0, momentum=0.0)
    w.grad = torch.ones(2, 2)
    opt.step()
    torch.testing.assert_close(w.detach(), -torch.ones(2, 2))


def blobs(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs with centres 8 sigma apart per axis: linearly separable in practice."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(123)) * 8
    y = torch.randint(0, classes, (n,), generator=g)
    return centres[y] + torch.randn(n, dim, generator=g) + 50.0, y  # + an offset BN removes


def test_head_is_bn_without_affine_and_small_linear() -> None:
    head = LinearProbeHead(64, 10)
    assert not head.norm.affine and head.norm.eps == 1e-6
    assert head.linear.weight.std().item() == pytest.approx(0.01, rel=0.2)
    assert torch.count_nonzero(head.linear.bias) == 0


def test_cached_probe_separates_blobs_and_resumes_exactly(tmp_path: Path) -> None:
    x, y = blobs(600, 16, 4, seed=0)
    vx, vy = blobs(400, 16, 4, seed=1)

    def probe(out: Path, resume: bool = False) -> LinearProbe:
        # Few steps: a larger trust coefficient than MAE's 0.001 (paired there with lr 6.4 and
        # thousands of steps) lets the weights, not only the biases, move within 72 steps.
        return LinearProbe(CachedFeatures(x, y, 32, seed=0), vx, vy, 4, out, lr=0.2, epochs=4,
                           warmup_epochs=1, trust_coefficient=0.2, eval_freq=2, resume=resume, ckpt_steps=5)

    ref = probe(tmp_path / "ref")
    result = ref.run()
    assert result["final"]["top1"] > 99.0
    assert [e["epoch"] for e in result["evals"]] == [2, 4]

    cut = probe(tmp_path / "cut")
    assert cut.run(stop_at_step=27)["status"] == "interrupted"  # killed mid epoch 2 (18 steps/epoch)
    ckpt = load_checkpoint(tmp_path / "cut" / "checkpoint_latest.pth")
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 7)  # the mid-epoch checkpoint after step 25
    resumed = probe(tmp_path / "cut", resume=True).run()
    final = load_checkpoint(tmp_path / "cut" / "checkpoint_latest.pth")["state"]["head"]
    for k, v in ref.head.state_dict().items():
        torch.testing.assert_close(final[k], v, rtol=0, atol=0)
    assert resumed["final"] == result["final"]


class ColourSquares(Dataset):
    """Images of one colour per class plus pixel noise: separable by mean colour after any crop."""

    COLOURS = np.array([[220, 30, 30], [30, 200, 40], [40, 40, 210]], dtype=np.float32)

    def __init__(self, n: int, seed: int) -> None:
        self.rng_seed, self.n = seed, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        rng = np.random.default_rng((self.rng_seed, i))
        label = i % 3
        img = self.COLOURS[label] + rng.normal(0, 25, (20, 20, 3))
        return Image.fromarray(img.clip(0, 255).astype(np.uint8)), label


def test_augment_mode_probe_on_frozen_features_of_augmented_images(tmp_path: Path) -> None:
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    tf = train_transform(16, 0.2, mean, std, 3)

    def encode(imgs: torch.Tensor) -> torch.Tensor:  # a frozen "encoder": per-channel means
        return imgs.mean(dim=(2, 3))

    source = AugmentedFeatures(ColourSquares(96, 0), tf, encode, batch_size=16, seed=0, workers=0,
                               device=torch.device("cpu"))
    val = ColourSquares(60, 1)
    vt = eval_transform(16, mean, std)
    vx = encode(torch.stack([vt(val[i][0]) for i in range(len(val))]))
    vy = torch.tensor([val[i][1] for i in range(len(val))])
    first = [b[0] for b in source.batches(0, 0)]
    assert len(first) == 6 and first[0].shape == (16, 3)
    again = [b[0] for b in source.batches(0, 2)]  # a resumed epoch sees the same batches
    torch.testing.assert_close(torch.cat(again), torch.cat(first[2:]))
    probe = LinearProbe(source, vx, vy, 3, tmp_path, lr=0.2, epochs=6, warmup_epochs=1, trust_coefficient=0.2,
                        eval_freq=6)
    assert probe.run()["final"]["top1"] > 99.0


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return trainer.run_dir / "checkpoint_latest.pth"


@pytest.mark.parametrize("mode", ["cached", "augment"])
def test_linear_suite_runs_and_writes_results(untrained_checkpoint: Path, tmp_path: Path, mode: str) -> None:
    args = [f"checkpoint={untrained_checkpoint}", f"mode={mode}", "epochs=2", "warmup_epochs=1",
            "batch_size=16", "workers=0", "progress=false", f"output_dir={tmp_path}", "eval_freq=1"]
    results = run_linear_eval(parse_eval_config(LinearEvalConfig, args))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scores"].keys() == {"top1", "top5"} and len(saved["evals"]) == 2
    assert saved["settings"]["lr"] == pytest.approx(0.1 * 16 / 256)  # blr * batch / 256
    assert results["num_train"] == 48 and results["num_val"] == 24
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "head.pth").is_file()
    assert (tmp_path / "features_train.pt").exists() == (mode == "cached")
    with pytest.raises(ConfigError, match="resume=True"):
        run_linear_eval(parse_eval_config(LinearEvalConfig, args))  # never overwrite a finished run

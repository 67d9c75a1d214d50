"""The training's reading of an evaluation image (patch gap g): features and monitor loaders.

``encode_images(..., patch_gap=g)`` must equal encoding the contiguous image stitched by hand
from the centre P x P of every (P+g)-pixel cell; the monitor's loaders at two sizes must hold the
same images in the same order; ``tools/gap_view_nn.py`` reproduces a run's own monitor score on
the contiguous reading.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.data import build_monitor_loaders
from latentmim.engine.pretrain import pretrain
from latentmim.models.vit import ViTEncoder
from latentmim.probing.features import encode_images

ROOT = Path(__file__).resolve().parents[2]
TINY = ["dataset=synthetic", "synthetic.num_train=48", "synthetic.num_val=24", "nn_train_images=40",
        "nn_val_images=20", "epochs=1", "batch_size=16", "env.workers=0", "log.progress=false",
        "log.tensorboard=false", "baselines=false", "eval_freq=1"]


def _stitch_centres(imgs: torch.Tensor, grid: int, patch: int, gap: int) -> torch.Tensor:
    """Naive reference: the G*P image made of each cell's centre patch, cell by cell."""
    cell, off = patch + gap, gap // 2
    out = torch.empty(imgs.shape[0], imgs.shape[1], grid * patch, grid * patch)
    for r in range(grid):
        for c in range(grid):
            out[:, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = \
                imgs[:, :, r * cell + off:r * cell + off + patch, c * cell + off:c * cell + off + patch]
    return out


@pytest.mark.parametrize("gap", [1, 2, 4])
def test_gapped_reading_equals_encoding_the_stitched_centres(gap):
    torch.manual_seed(0)
    enc = ViTEncoder(grid_size=4, patch_size=8, in_chans=3, embed_dim=32, depth=2, num_heads=4).eval()
    imgs = torch.randn(3, 3, 4 * (8 + gap), 4 * (8 + gap))
    for feature in ("avgpool_prenorm", "cls"):
        got = encode_images(enc, imgs, feature, patch_gap=gap)
        want = encode_images(enc, _stitch_centres(imgs, 4, 8, gap), feature)
        torch.testing.assert_close(got, want)


def test_a_gapped_image_of_the_wrong_side_is_refused():
    enc = ViTEncoder(grid_size=4, patch_size=8, in_chans=3, embed_dim=32, depth=1, num_heads=4).eval()
    with pytest.raises(ValueError, match="does not match"):
        encode_images(enc, torch.randn(1, 3, 32, 32), patch_gap=2)


def test_monitor_loaders_hold_the_same_images_at_any_size(tmp_path):
    cfg = compose_config([*TINY, f"output_dir={tmp_path}"], "demo")
    cpu = torch.device("cpu")
    small = build_monitor_loaders(cfg, cpu)
    large = build_monitor_loaders(cfg, cpu, size=cfg.train_size)
    for a, b in zip(small, large, strict=True):
        xa, ya = torch.cat([x for x, *_ in a]), torch.cat([y for _, y, *_ in a])
        xb, yb = torch.cat([x for x, *_ in b]), torch.cat([y for _, y, *_ in b])
        assert xa.shape[-1] == cfg.eval_size and xb.shape[-1] == cfg.train_size
        assert torch.equal(ya, yb)
        # Same images: downsizing the large reading lands near the small one (bicubic both ways).
        back = torch.nn.functional.interpolate(xb, size=cfg.eval_size, mode="bilinear", antialias=True)
        assert (back - xa).abs().mean() < 0.25 * xa.abs().mean()


@pytest.mark.slow
def test_the_tool_reproduces_the_runs_own_monitor_score(tmp_path):
    cfg = compose_config([*TINY, f"output_dir={tmp_path}", "job_name=run"], "demo")
    pretrain(cfg)
    run = Path(cfg.run_dir)
    last = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])
    out = tmp_path / "view.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gap_view_nn.py"), f"r={run}", "--gap", "2",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(out.read_text())["r"]
    assert scores["contiguous/encoder"]["nn_loo"] == pytest.approx(last["nn_loo"])
    assert scores["contiguous/encoder"]["knn20_top1"] == pytest.approx(last["knn20_top1"])
    assert set(scores) == {"contiguous/encoder", "contiguous/raw pixels", "gapped/encoder", "gapped/raw pixels"}


def test_the_tool_fails_in_one_line_on_a_folder_without_a_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gap_view_nn.py"), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "no checkpoint" in proc.stderr and "Traceback" not in proc.stderr

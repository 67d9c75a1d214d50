"""``tools/position_share.py``: the variance split against a hand-computed case and a real run."""

import re
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from position_share import run_tokens, variance_shares  # noqa: E402


def test_shares_of_a_position_part_plus_an_image_part():
    # t[n, k] = a[k] + b[n] in orthogonal channels: |a_k|^2 = 1, |b_n|^2 = 9 -> total 10
    a = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # (K=2, D)
    b = torch.tensor([[0.0, 3.0], [0.0, -3.0]])  # (N=2, D)
    tokens = a[None, :, :] + b[:, None, :]  # (N, K, D)
    position, image = variance_shares(tokens)
    assert abs(position - 0.1) < 1e-6 and abs(image - 0.9) < 1e-6
    # tokens that depend on position alone
    position, image = variance_shares(a[None].expand(5, 2, 2) + 7.0)
    assert abs(position - 1.0) < 1e-6 and abs(image) < 1e-6


def test_a_run_is_measured_on_its_monitor_images(tiny):
    from latentmim.config.load import compose_config
    from latentmim.engine.pretrain import pretrain

    cfg = compose_config([*tiny, "epochs=1"])
    pretrain(cfg)
    tokens = run_tokens(cfg.run_dir)
    assert tokens.shape == (cfg.nn_val_images or cfg.synthetic.num_val, cfg.grid_size**2, cfg.embed_dim)
    png = Path(cfg.run_dir) / "share.png"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "position_share.py"), f"tiny={cfg.run_dir}",
                           "--plot", str(png)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    position, image = (float(v) for v in re.findall(r"position share ([\d.]+), image share ([\d.]+)", proc.stdout)[0])
    expected = variance_shares(tokens)
    assert abs(position - expected[0]) < 6e-4 and abs(image - expected[1]) < 6e-4
    assert 0.0 < position < 1.0 and 0.0 < image < 1.0
    assert png.stat().st_size > 0 and f"wrote {png}" in proc.stdout


def test_a_missing_run_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "position_share.py"), str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no checkpoint at" in proc.stderr and "Traceback" not in proc.stderr

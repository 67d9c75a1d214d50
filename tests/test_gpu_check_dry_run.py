"""``benchmarks/gpu_check.sh --dry-run``: the GPU check works end to end on CPU before GPU minutes are spent."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_prints_its_table_and_passes(tmp_path):
    env_python = {"PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env={**__import__("os").environ, **env_python})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    rows = {line.split(" | ")[0][2:]: line for line in table[1:]}
    assert set(rows) == {"CUDA tests", "ours: tiny fp32", "authors: tiny fp32", "pretrain synthetic"}, table
    assert "img/s" in rows["ours: tiny fp32"] and "GFLOP/img" in rows["ours: tiny fp32"]
    assert "skipped" in rows["CUDA tests"] or "passed" in rows["CUDA tests"]
    assert "NN " in rows["pretrain synthetic"] and (tmp_path / "pretrain" / "results.json").is_file()


def test_gpu_check_rejects_an_unknown_argument():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dryrun"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--dryrun" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_without_the_projects_dependencies_the_preflight_fails_in_one_line(tmp_path):
    # a Python without torch (the system's here): the check stops before any step, in one line
    env = {**__import__("os").environ, "PYTHON": "/usr/bin/python3", "PYTHONPATH": ""}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "preflight: cannot import" in proc.stderr


def test_the_gpu_pretrain_step_trains_a_vit_s16():
    # the step's keys on the paper's config: no size of the demo config may leak in
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check_config import CONFIG_NAME, PRETRAIN

    from latentmim.config.load import compose_config
    from latentmim.methods.factory import build_model

    cfg = compose_config(PRETRAIN["gpu"], config_name=CONFIG_NAME)
    with torch.device("meta"):
        model = build_model(cfg, in_chans=3)
    enc = model.encoder
    assert (enc.embed_dim, len(enc.blocks), enc.blocks[0].attn.num_heads, enc.patch_size, enc.grid_size) == \
        (384, 12, 6, 16, 8)
    assert cfg.train_size == 160 and cfg.env.precision == "bf16" and cfg.baselines

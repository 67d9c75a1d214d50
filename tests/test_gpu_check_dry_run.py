"""``benchmarks/gpu_check.sh --dry-run``: the GPU check works end to end on CPU before GPU minutes are spent."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_prints_its_table_and_passes(tmp_path):
    env_python = {"PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env={**__import__("os").environ, **env_python})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    rows = {line.split(" | ")[0][2:]: line for line in table[1:]}
    assert set(rows) == {"CUDA tests", "ours: tiny fp32", "authors: tiny fp16", "pretrain synthetic"}, table
    assert "img/s" in rows["ours: tiny fp32"] and "GFLOP/img" in rows["ours: tiny fp32"]
    assert "skipped" in rows["CUDA tests"] or "passed" in rows["CUDA tests"]
    assert "NN " in rows["pretrain synthetic"] and (tmp_path / "pretrain" / "results.json").is_file()


def test_gpu_check_rejects_an_unknown_argument():
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dryrun"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--dryrun" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

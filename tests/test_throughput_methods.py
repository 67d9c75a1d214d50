"""``benchmarks/throughput.py methods``: every method's training step at one encoder, side by side."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_method_is_timed_at_the_same_encoder_with_ratios_to_mae():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "methods", "fp32",
                           "--scale", "tiny", "--dataset", "synthetic", "--steps", "1", "--warmup", "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = re.findall(r"^\| (\w+) \((\w+/\w+)\) \| ([\d.]+) \| ([\d.e-]+) \| (\d+) \| ([\d.]+)x \| ([\d.]+)x \|$",
                      proc.stdout, re.M)
    methods = [r[0] for r in rows]
    assert methods == ["mae", "pcae", "simmim", "conmim", "data2vec", "lmim", "ijepa", "supervised"], proc.stdout
    mae = rows[0]
    assert mae[5] == "1.00" and mae[6] == "1.00"
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)

"""``benchmarks/data_speed.py``: the three augmentation paths side by side, with their ratios to pil."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_speed_prints_every_path_and_the_ratios():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "data_speed.py"), "--batches", "3",
                           "synthetic.num_train=256", "batch_size=32"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rates = dict(re.findall(r"augment=(\w+)\s+(\d+) img/s", proc.stdout))
    assert set(rates) == {"pil", "batch", "tensor"} and all(int(r) > 0 for r in rates.values()), proc.stdout
    for aug in ("batch", "tensor"):
        ratio = float(re.search(rf"{aug} / pil: ([\d.]+)x", proc.stdout).group(1))
        assert abs(ratio - int(rates[aug]) / int(rates["pil"])) < 0.05

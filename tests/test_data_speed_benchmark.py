"""``benchmarks/data_speed.py``: the training loader's images/s on a small config."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_speed_prints_the_loaders_rate():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "data_speed.py"), "--batches", "3",
                           "synthetic.num_train=256", "batch_size=32"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rate = re.search(r"(\d+) img/s  \(median of 3 batches of 32", proc.stdout)
    assert rate is not None and int(rate.group(1)) > 0, proc.stdout

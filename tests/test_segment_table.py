"""``tools/segment_table.py``: mean ± std per method and pooled baselines, by hand; clear errors."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "segment_table.py"


def _eval_folder(path: Path, enc: tuple[float, float, float], rand: float) -> Path:
    path.mkdir(parents=True)
    res = {"eval": "segment",
           "miou": {"encoder": {"best_k": enc[0]}, "raw_pixels": {"best_k": 0.4}, "random_init": {"best_k": rand}},
           "probe": {"encoder": {"semantic": enc[1], "foreground": enc[2]},
                     "raw_pixels": {"semantic": 0.05, "foreground": 0.3},
                     "random_init": {"semantic": 0.07, "foreground": 0.5}}}  # fmt: skip
    (path / "results.json").write_text(json.dumps(res))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True)


def test_table_by_hand_and_png(tmp_path):
    a0 = _eval_folder(tmp_path / "a0", (0.30, 0.10, 0.60), 0.44)
    a1 = _eval_folder(tmp_path / "a1", (0.34, 0.14, 0.62), 0.46)
    b0 = _eval_folder(tmp_path / "b0", (0.40, 0.08, 0.64), 0.45)
    out = tmp_path / "fig.png"
    proc = _run(f"A={a0},{a1}", f"B={b0}", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # A: means 32.0 / 12.0 / 61.0, sample std of two values d apart = d / sqrt(2)
    assert "| A | 2 | 32.0 ± 2.8 | 12.0 ± 2.8 | 61.0 ± 1.4 |" in lines
    assert "| B | 1 | 40.0 | 8.0 | 64.0 |" in lines
    # baselines pooled over the three folders
    assert "| random init | 3 | 45.0 ± 1.0 | 7.0 ± 0.0 | 50.0 ± 0.0 |" in lines
    assert "| raw pixels | 3 | 40.0 ± 0.0 | 5.0 ± 0.0 | 30.0 ± 0.0 |" in lines
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_wrong_folder_is_a_one_line_error_before_anything_is_written(tmp_path):
    good = _eval_folder(tmp_path / "good", (0.3, 0.1, 0.6), 0.44)
    out = tmp_path / "x.png"
    proc = _run(f"A={good},{tmp_path / 'missing'}", "--out", str(out))
    assert proc.returncode != 0
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
    proc = _run(str(good))
    assert proc.returncode != 0 and "LABEL=DIR" in proc.stderr and "Traceback" not in proc.stderr

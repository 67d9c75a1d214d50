"""``tools/plot_runs.py``: draws one line per run folder from its eval.jsonl, fails clearly on a wrong folder."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "plot_runs.py"


def _run_folder(path: Path, nn: list[float]) -> Path:
    path.mkdir(parents=True)
    lines = [json.dumps({"step": 10 * e, "epoch": e, "nn_loo": v, "knn20_top1": v + 3}) for e, v in enumerate(nn, 1)]
    (path / "eval.jsonl").write_text("\n".join(lines) + "\n{\"epoch\": 9, \"nn_l")  # a half-written tail
    (path / "results.json").write_text(json.dumps({"raw_pixels": {"nn_loo": 20.0, "knn20_top1": 22.0}}))
    return path


def test_it_writes_a_png_with_one_line_per_run_and_the_floor(tmp_path):
    a = _run_folder(tmp_path / "a", [10, 20, 30])
    b = _run_folder(tmp_path / "b", [12, 18])
    out = tmp_path / "fig" / "sweep.png"
    proc = subprocess.run([sys.executable, str(TOOL), f"base={a}", str(b), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_eval_jsonl_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--out", str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "no eval.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()

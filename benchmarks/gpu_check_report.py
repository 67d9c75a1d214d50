"""One-line summaries for benchmarks/gpu_check.sh's table (kept out of the shell script for readability).

    python benchmarks/gpu_check_report.py ours OURS.json
    python benchmarks/gpu_check_report.py authors AUTHORS.json [OURS.json]
    python benchmarks/gpu_check_report.py pretrain RUN/results.json SECONDS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _last_record(path: str) -> dict:
    return json.loads(Path(path).read_text().strip().splitlines()[-1])


def ours(path: str) -> str:
    r = _last_record(path)
    mfu = (f"MFU {r['mfu']:.1%} of {r['peak_tflops']:.0f} TFLOP/s ({r['device_name']})" if r.get("mfu")
           else f"MFU n/a (no bf16 peak known for {r.get('device_name', 'this device')})")
    return (f"{r['img_per_s']:.1f} img/s, {r['gflop_per_img']:.3g} GFLOP/img, {mfu}, "
            f"peak {r['peak_mem_mb']:.0f} MiB")


def authors(path: str, ours_path: str | None = None) -> str:
    t = _last_record(path)
    line = f"{t['img_per_s']:.1f} img/s"
    if ours_path and Path(ours_path).is_file() and Path(ours_path).read_text().strip():
        o = _last_record(ours_path)
        line += f"; ours / theirs = {o['img_per_s'] / t['img_per_s']:.2f}x"
    return line


def pretrain(path: str, seconds: str) -> str:
    r = json.loads(Path(path).read_text())
    t, px = r["trained"], r.get("raw_pixels", {})
    floor = f" (raw pixels {px['nn_loo']:.1f} / {px['knn20_top1']:.1f})" if px else ""
    return (f"NN {t['nn_loo']:.1f} / kNN {t['knn20_top1']:.1f}{floor}, {r['img_per_s']:.0f} img/s, "
            f"{r['epochs']} epochs, {seconds} s")


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    print({"ours": ours, "authors": authors, "pretrain": pretrain}[kind](*args))

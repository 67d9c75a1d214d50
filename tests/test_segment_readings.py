"""``tools/segment_readings.py``: the texture overlay keeps each region's mean colour, and the
colour reading's ceiling and flat score match the protocol computed here by hand."""

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from segment_readings import best_k_miou, textured  # noqa: E402

from latentmim.data.synthetic import SyntheticShapes  # noqa: E402


def test_texture_overlay_is_centred_per_region_and_spreads_colours() -> None:
    s = SyntheticShapes("val", 1, image_size=32, seed=0).scene(0)
    weak = textured(s.image, s.instances, 0.05, np.random.default_rng(0))
    for region in np.unique(s.instances):
        m = s.instances == region
        # centred per region: at a contrast too weak to clip, each region keeps its mean colour
        assert np.abs(weak[m].mean(0) - s.image[m].astype(np.float32).mean(0)).max() < 0.5
    out = textured(s.image, s.instances, 0.6, np.random.default_rng(0))
    for region in np.unique(s.instances)[1:]:  # each object: no longer (nearly) one colour
        m = s.instances == region
        assert out[m].std(0).mean() > 2 * s.image[m].astype(np.float32).std(0).mean()


def test_best_k_on_perfect_features_is_the_patch_ceiling() -> None:
    s = SyntheticShapes("val", 1, image_size=32, seed=0).scene(0)
    # One-hot features of each patch's majority segment: clustering at k = #segments recovers them.
    from latentmim.eval.dense.segment_probe import patch_majority_labels

    lab = patch_majority_labels(s.instances, 4).ravel()
    feats = np.eye(lab.max() + 1)[lab] + 1e-3 * np.random.default_rng(0).standard_normal((lab.size, lab.max() + 1))
    from latentmim.eval.dense.segment_cluster import hungarian_miou, upsample_labels

    ceiling = hungarian_miou(upsample_labels(lab.reshape(8, 8), 32, 32), s.instances)
    assert len(np.unique(lab)) <= 5
    assert abs(best_k_miou(feats, s.instances, 8) - ceiling) < 1e-9


def test_cli_colour_and_a_missing_checkpoint() -> None:
    tool = ROOT / "tools" / "segment_readings.py"
    proc = subprocess.run([sys.executable, str(tool), "colour", "--images", "4", "--size", "32", "--patch", "4",
                           "--contrast", "0", "1"], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ceiling" in proc.stdout and proc.stdout.count("best-k mIoU") == 2
    proc = subprocess.run([sys.executable, str(tool), "position", "/nonexistent.pth"], capture_output=True, text=True)
    assert proc.returncode != 0 and "no such checkpoint" in proc.stderr and "Traceback" not in proc.stderr

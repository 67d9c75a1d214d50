"""The linear segmentation probe: its pieces against naive references, and end to end."""

import json

import numpy as np
import pytest
import torch

from conftest import TINY
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.data.synthetic import SyntheticShapes
from latentmim.engine.pretrain import pretrain
from latentmim.eval.dense.segment_cluster import upsample_labels
from latentmim.eval.dense.segment_probe import (
    confusion,
    linear_probe_segmentation,
    miou_from_confusion,
    patch_majority_labels,
)


def test_patch_majority_labels_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, size=(12, 16))
    got = patch_majority_labels(mask, 4)
    assert got.shape == (3, 4)
    for r in range(3):
        for c in range(4):
            counts = np.bincount(mask[4 * r : 4 * r + 4, 4 * c : 4 * c + 4].ravel(), minlength=4)
            assert got[r, c] == int(np.flatnonzero(counts == counts.max())[0])  # ties: lowest id


def test_miou_by_hand() -> None:
    gt = np.array([[0, 0, 1, 1], [0, 0, 1, 2]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1]])
    # class 0: inter 3, union 4; class 1: inter 3, union 5; class 2: inter 0, union 1
    conf = confusion(pred, gt, 3)
    assert conf.sum() == gt.size and conf[2, 1] == 1
    assert miou_from_confusion(conf) == pytest.approx((3 / 4 + 3 / 5 + 0) / 3)
    # A class in neither map is not averaged in.
    assert miou_from_confusion(confusion(pred, gt, 5)) == pytest.approx((3 / 4 + 3 / 5) / 3)


def _pairs(split: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    shapes = SyntheticShapes(split, n, image_size=32, seed=0)
    return [(s.image, s.mask) for s in (shapes.scene(i) for i in range(n))]


def test_probe_reaches_the_patch_oracle_with_label_features_and_chance_with_noise() -> None:
    """Features that are the one-hot majority label of the patch must give the oracle's mIoU
    (the best any patch-level prediction can score); random features must score far below it."""
    train, val = _pairs("train", 40), _pairs("val", 20)
    lookup = {im.tobytes(): m for im, m in train + val}
    gen = torch.Generator().manual_seed(0)

    def label_features(x: torch.Tensor) -> torch.Tensor:
        # Recover the image from its normalised tensor (mean 0, std 1 below) to look up its mask.
        img = x[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
        return torch.nn.functional.one_hot(torch.from_numpy(patch_majority_labels(lookup[img.tobytes()], 4)),
                                           11).float()  # fmt: skip

    def noise_features(x: torch.Tensor) -> torch.Tensor:
        return torch.randn(8, 8, 16, generator=gen)

    got = linear_probe_segmentation({"labels": label_features, "noise": noise_features}, train, val,
                                    num_classes=11, patch_size=4, mean=(0.0,) * 3, std=(1.0,) * 3)  # fmt: skip
    gt = np.stack([m for _, m in val])
    oracle = np.stack([upsample_labels(patch_majority_labels(m, 4), 32, 32) for m in gt])
    assert got["labels"]["semantic"] == pytest.approx(miou_from_confusion(confusion(oracle, gt, 11)))
    assert got["labels"]["foreground"] == pytest.approx(
        miou_from_confusion(confusion((oracle > 0).astype(int), (gt > 0).astype(int), 2)))
    assert got["noise"]["semantic"] < 0.5 * got["labels"]["semantic"]
    assert got["noise"]["foreground"] < got["labels"]["foreground"] - 0.2


@pytest.mark.slow
def test_cli_probe_on_synthetic_and_bad_input(tmp_path, capsys) -> None:
    pretrain(compose_config([*TINY, "epochs=1", "warmup_epochs=0", f"output_dir={tmp_path}"]))
    ckpt = tmp_path / "demo" / "checkpoint_latest.pth"
    out = tmp_path / "seg"
    code = main(["eval", "segment", f"checkpoint={ckpt}", "num_images=6", "probe_images=12", "tsne=false", "figures=2",
                 f"output_dir={out}", "progress=false"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Linear segmentation probe" in printed and "| semantic | foreground |" in printed
    res = json.loads((out / "results.json").read_text())
    # figures=2: only the first two images are plotted, all six are scored.
    assert [("figure" in r, len(r["miou"])) for r in res["images"]] == [(True, 3)] * 2 + [(False, 3)] * 4
    assert len(list((out / "figures").iterdir())) == 2
    assert set(res["probe"]) == {"encoder", "raw_pixels", "random_init"}
    for row in res["probe"].values():
        assert set(row) == {"semantic", "foreground"} and all(0.0 < v <= 1.0 for v in row.values())
    # The probe needs class masks: image files have none, and a negative count is refused.
    for args, needle in ((["images=a.png", "probe_images=4"], "probe_images"),
                         (["probe_images=-1"], "probe_images")):  # fmt: skip
        assert main(["eval", "segment", f"checkpoint={ckpt}", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1

"""``latentmim eval knn``: exact predictions on a hand-built bank, and the suite on a checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import KnnEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.registry import build_dataset
from latentmim.data.transforms import eval_transform
from latentmim.eval.knn.suite import knn_protocols, run_knn_eval
from latentmim.interop.load import load_pretrained
from latentmim.probing.features import encode_images
from latentmim.probing.knn import weighted_knn_predict


def circle(degrees: list[float]) -> torch.Tensor:
    t = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([t.cos(), t.sin()], 1).float()


def test_hand_built_bank_exact_predictions() -> None:
    # Bank: class 0 at 0 and 20 deg, class 1 at 90 deg, class 2 at 180 and 200 deg.
    bank, bank_y = circle([0, 20, 90, 180, 200]), torch.tensor([0, 0, 1, 2, 2])
    # Queries at 5, 80, 190 and 140 deg, the last one labelled 1 but nearest to 180 (class 2).
    queries, query_y = circle([5, 80, 190, 140]), torch.tensor([0, 1, 2, 1])
    out = knn_protocols(bank, bank_y, queries, query_y, num_classes=3, k=5, temperature=0.07)
    assert out.predictions["weighted"].tolist() == [0, 1, 2, 2]
    assert out.scores["knn5_top1"] == 75.0
    assert "knn5_top5" not in out.scores  # 3 classes: no top-5
    # Class scores by hand for the 140-deg query: sum of exp(cos(angle) / T) per class.
    t = 0.07
    votes = [sum(math.exp(math.cos(math.radians(140 - a)) / t) for a in angles)
             for angles in ([0, 20], [90], [180, 200])]
    assert max(range(3), key=votes.__getitem__) == 2
    scores = weighted_knn_predict(bank, bank_y, circle([140]), num_classes=3, k=5, temperature=t)
    torch.testing.assert_close(scores[0].double(), torch.tensor(votes, dtype=torch.float64), rtol=1e-4, atol=0)
    # LOO within the queries (angles to the others): 5 -> 80 (75 deg); 80 -> 140 (60);
    # 190 -> 140 (50); 140 -> 190 (50, vs 60 to 80). Labels of those: 1, 1, 1, 2.
    assert out.predictions["loo"].tolist() == [1, 1, 1, 2]
    assert out.scores["nn_loo"] == 25.0

    # With k=1 the weighted vote is plain 1-NN: 100 deg is nearest to 90 (class 1).
    one = knn_protocols(bank, bank_y, circle([100]), torch.tensor([1]), 3, k=1, protocol="weighted")
    assert one.predictions["weighted"].tolist() == [1]
    assert "nn_loo" not in one.scores


def test_loo_never_returns_the_query_itself() -> None:
    # Pairs of near-duplicates with different labels: a self-match would score 100%.
    x = circle([0, 1, 120, 121, 240, 241])
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    out = knn_protocols(None, None, x, y, num_classes=2, protocol="loo")
    assert out.predictions["loo"].tolist() == [1, 0, 1, 0, 1, 0]
    assert out.scores == {"nn_loo": 0.0}


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real latentmim checkpoint of the tiny test model at its initialisation (no training)."""
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return trainer.run_dir / "checkpoint_latest.pth"


def test_suite_scores_equal_a_direct_computation(untrained_checkpoint: Path, tmp_path: Path) -> None:
    cfg = parse_eval_config(KnnEvalConfig, [f"checkpoint={untrained_checkpoint}", "k=5", "workers=0", "save_features=true",
                                            "progress=false", "baselines=true", f"output_dir={tmp_path}"])
    results = run_knn_eval(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scores"] == results["scores"]
    assert (tmp_path / "results.md").read_text().count("|") > 10

    # Independent reference: encode every image by hand and run the protocols on the features.
    enc = load_pretrained(str(untrained_checkpoint)).encoder
    train, info = build_dataset("synthetic", "train", None, synthetic_size=24, synthetic_num=48)
    val, _ = build_dataset("synthetic", "val", None, synthetic_size=24, synthetic_num=24)
    tf = eval_transform(16, info.mean, info.std)

    def feats(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        imgs = torch.stack([tf(ds[i][0]) for i in range(len(ds))])
        return encode_images(enc, imgs), torch.tensor([ds[i][1] for i in range(len(ds))])

    (tx, ty), (vx, vy) = feats(train), feats(val)
    ref = knn_protocols(tx, ty, vx, vy, info.num_classes, k=5)
    assert results["scores"] == pytest.approx(ref.scores)
    assert results["num_train"] == 48 and results["num_val"] == 24
    assert set(results["baselines"]["raw_pixels"]) == {"nn_loo", "knn5_top1", "knn5_top5"}
    # save_features=true: the scored features, as encoded by hand
    saved = torch.load(tmp_path / "features.pt")
    torch.testing.assert_close(saved["val"], vx)
    torch.testing.assert_close(saved["train"], tx)
    assert torch.equal(saved["train_labels"], ty) and torch.equal(saved["val_labels"], vy)


def test_val_subset_and_loo_only(untrained_checkpoint: Path, tmp_path: Path) -> None:
    cfg = parse_eval_config(KnnEvalConfig, [f"checkpoint={untrained_checkpoint}", "protocol=loo", "val_images=10",
                                            "workers=0", "progress=false", f"output_dir={tmp_path}"])
    results = run_knn_eval(cfg)
    assert results["num_val"] == 10 and results["num_train"] == 0
    assert set(results["scores"]) == {"nn_loo"}

"""Few-shot transfer: shot sampling, CoOp split files, the classifier, and the suite's statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentmim.config.eval_load import parse_eval_config
from latentmim.config.eval_schema import FewshotEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.errors import DataError
from latentmim.eval.fewshot.data import load_fewshot_data, per_class_split
from latentmim.eval.fewshot.suite import fit_and_score, run_fewshot_eval, sample_shots


def test_exactly_k_per_class_and_seeds_differ() -> None:
    labels = torch.tensor([c for c in range(5) for _ in range(30)] + [5, 5])  # class 5 has 2 images
    for k in (1, 2, 4, 8, 16):
        idx = sample_shots(labels, k, seed=1)
        counts = torch.bincount(labels[idx], minlength=6)
        assert counts[:5].tolist() == [k] * 5 and counts[5] == min(k, 2)
        assert idx.unique().numel() == idx.numel()  # without replacement
        assert torch.equal(idx, sample_shots(labels, k, seed=1))  # reproducible
    assert not torch.equal(sample_shots(labels, 4, seed=1), sample_shots(labels, 4, seed=2))
    assert not torch.equal(sample_shots(labels, 4, seed=1)[:4], sample_shots(labels, 8, seed=1)[:4])


def test_per_class_split_is_coop_50_20_30_and_disjoint() -> None:
    labels = torch.tensor([0] * 10 + [1] * 20)
    train, test = per_class_split(labels, seed=0)
    assert torch.bincount(labels[train]).tolist() == [5, 10]
    assert torch.bincount(labels[test]).tolist() == [3, 6]
    assert not set(train.tolist()) & set(test.tolist())


def test_logistic_regression_on_separable_features() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 10
    ytr, yte = torch.arange(4).repeat(4), torch.arange(4).repeat(25)
    xtr = centres[ytr] + torch.randn(16, 4, generator=g)
    xte = centres[yte] + torch.randn(100, 4, generator=g)
    assert fit_and_score(xtr, ytr, xte, yte, C=100.0) == 100.0
    # one class seen only: every prediction is that class
    assert fit_and_score(xtr[:1], ytr[:1], xte, yte) == 25.0


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_coop_split_file_is_read(tmp_path: Path) -> None:
    root = tmp_path / "data"
    base = root / "dtd" / "images"
    items = {"train": [], "val": [], "test": []}
    for c, name in enumerate(["banded", "dotted"]):
        for i in range(4):
            rel = f"{name}/{name}_{i}.png"
            _png(base / rel, 40 + 100 * c)
            items["train" if i < 3 else "test"].append([rel, c, name])
    (root / "dtd" / "split_zhou_DescribableTextures.json").write_text(json.dumps(items))
    data = load_fewshot_data("dtd", str(root), download=False, seed=0, registry_split=None)  # type: ignore[arg-type]
    assert data.split_source.startswith("CoOp split file")
    assert len(data.pool) == 6 and len(data.test) == 2 and data.info.num_classes == 2
    assert data.pool_labels.tolist() == [0, 0, 0, 1, 1, 1]
    img, label = data.test[1]
    assert label == 1 and img.getpixel((0, 0)) == (140, 140, 140)


def test_ucf101_midframes_without_split_file_get_a_seeded_per_class_split(tmp_path: Path) -> None:
    frames = tmp_path / "ucf101" / "UCF-101-midframes"
    for c, name in enumerate(["Archery", "Bowling"]):
        for i in range(10):
            _png(frames / name / f"v_{name}_g{i:02d}_c01.png", 30 * (c + 1))
    data = load_fewshot_data("ucf101", str(tmp_path), False, 0, None)  # type: ignore[arg-type]
    assert data.split_source.startswith("seeded per-class split")
    assert torch.bincount(data.pool_labels).tolist() == [5, 5] and len(data.test) == 6
    again = load_fewshot_data("ucf101", str(tmp_path), False, 0, None)  # type: ignore[arg-type]
    assert again.pool.indices == data.pool.indices  # type: ignore[attr-defined]
    assert data.test[0][1] == 0 and data.test[5][1] == 1


def test_missing_transfer_data_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="transfer_root"):
        load_fewshot_data("flowers102", None, False, 0, None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=str(tmp_path / "flowers-102")):
        load_fewshot_data("flowers102", str(tmp_path), False, 0, None)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # nothing created, nothing downloaded


def test_suite_reports_mean_and_std_over_seeds(tmp_path: Path) -> None:
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    trainer = Pretrainer(compose_config([*TINY, f"output_dir={tmp_path}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    out = tmp_path / "fs"
    args = [f"checkpoint={trainer.run_dir / 'checkpoint_latest.pth'}", "shots=1,2", "seeds=1,2,3", "workers=0",
            "progress=false", f"output_dir={out}"]
    results = run_fewshot_eval(parse_eval_config(FewshotEvalConfig, args))
    syn = results["datasets"]["synthetic"]
    assert syn["split"] == "the dataset's train / val splits" and syn["test_size"] == 24
    for k in ("1", "2"):
        accs = syn["shots"][k]["per_seed"]
        assert len(accs) == 3 and all(0 <= a <= 100 for a in accs)
        assert syn["shots"][k]["mean"] == pytest.approx(np.mean(accs))
        assert syn["shots"][k]["std"] == pytest.approx(np.std(accs))
    assert (out / "fewshot.png").stat().st_size > 0
    assert "1-shot" in (out / "results.md").read_text()

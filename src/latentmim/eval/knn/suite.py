"""``latentmim eval knn``: the NN protocols of METHOD.md section 4 on a checkpoint.

* ``nn_loo`` (the paper's "NN", official): leave-one-out 1-NN by cosine within the val set.
* ``knn{k}_top1`` / ``knn{k}_top5``: weighted k-NN, train bank -> val queries (k=20, T=0.07).

Features default to the official ones: mean of the patch tokens before the final norm.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from latentmim.config.eval_schema import KnnEvalConfig
from latentmim.eval.data import build_eval_splits, make_loader
from latentmim.eval.report import markdown_table, write_results
from latentmim.eval.session import start_session
from latentmim.probing.features import (
    extract_encoder_features,
    extract_features,
    raw_pixel_features,
)
from latentmim.probing.knn import loo_1nn_predict, weighted_knn_predict
from latentmim.runtime.checkpoint import save_atomic


@dataclass
class KnnOutcome:
    """Predictions and accuracies (%) of the requested protocols."""

    predictions: dict[str, Tensor]  # protocol -> (Nv,) predicted labels
    scores: dict[str, float]


def knn_protocols(
    train_x: Tensor | None,
    train_y: Tensor | None,
    val_x: Tensor,
    val_y: Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    protocol: str = "both",
    search: str = "auto",
) -> KnnOutcome:
    """Run the NN protocols on precomputed features.

    Args:
        train_x, train_y: (Nt, D) bank features and (Nt,) labels (unused for ``loo``).
        val_x, val_y: (Nv, D) query features and (Nv,) labels.
        num_classes: C.
        k, temperature: weighted k-NN settings.
        protocol: ``loo`` | ``weighted`` | ``both``.
        search: neighbour search, ``auto`` | ``exact`` | ``bf16`` (:func:`~latentmim.probing.knn.top_similar`:
            the same neighbours either way).

    Returns:
        predictions ``{"loo": ..., "weighted": ...}`` and scores ``nn_loo``, ``knn{k}_top1``,
        ``knn{k}_top5`` (top-5 only with >= 5 classes).
    """
    preds: dict[str, Tensor] = {}
    scores: dict[str, float] = {}
    n = val_y.shape[0]
    val_y = val_y.to(val_x.device)
    if protocol in ("loo", "both"):
        preds["loo"] = loo_1nn_predict(val_x, val_y, search=search)
        scores["nn_loo"] = 100.0 * (preds["loo"] == val_y).sum().item() / n
    if protocol in ("weighted", "both"):
        assert train_x is not None and train_y is not None
        class_scores = weighted_knn_predict(train_x, train_y, val_x.to(train_x.device), num_classes, k=k,
                                            temperature=temperature, search=search)
        val_y = val_y.to(class_scores.device)
        ranked = class_scores.topk(min(5, num_classes), dim=1).indices  # (Nv, <=5)
        preds["weighted"] = ranked[:, 0]
        hits = ranked == val_y[:, None]
        scores[f"knn{k}_top1"] = 100.0 * hits[:, :1].any(1).sum().item() / n
        if num_classes >= 5:
            scores[f"knn{k}_top5"] = 100.0 * hits.any(1).sum().item() / n
    return KnnOutcome(preds, scores)


def run_knn_eval(cfg: KnnEvalConfig) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint``; writes results.json / results.md and returns the results."""
    session = start_session(cfg, "knn")
    loaded, device = session.loaded, session.device
    splits = build_eval_splits(cfg, loaded, need_train=cfg.protocol != "loo")
    tf = splits.eval_transform()

    def loader(ds: Dataset) -> DataLoader:
        return make_loader(ds, tf, cfg.batch_size, cfg.workers, device, seed=cfg.seed)

    t0 = time.time()
    val = extract_encoder_features(loaded.encoder, loader(splits.val), cfg.feature, device,
                                   cfg.precision, cfg.progress, "val features")
    val_x, val_y = val.readable()  # unreadable images are dropped, not scored as their neighbour's twin
    dropped = {"val": val.dropped, "train": 0}
    train_x = train_y = None
    if cfg.protocol != "loo":
        train = extract_encoder_features(loaded.encoder, loader(splits.train), cfg.feature,
                                         device, cfg.precision, cfg.progress, "train features")
        (train_x, train_y), dropped["train"] = train.readable(), train.dropped
    t_feat = time.time() - t0
    # Features come back on the CPU; the similarity search runs on the evaluation device.
    outcome = knn_protocols(*(None if t is None else t.to(device) for t in (train_x, train_y, val_x, val_y)),
                            splits.info.num_classes, cfg.k, cfg.temperature, cfg.protocol, cfg.search)
    outcome.predictions = {k: v.cpu() for k, v in outcome.predictions.items()}
    t_knn = time.time() - t0 - t_feat
    rows = [{"features": f"{cfg.feature} ({loaded.format})", **outcome.scores}]
    baselines = {}
    if cfg.baselines:
        px_val = extract_features(raw_pixel_features, loader(splits.val), "cpu", cfg.progress, "val pixels").readable()
        px_train = (None, None)
        if cfg.protocol != "loo":
            px_train = extract_features(raw_pixel_features, loader(splits.train), "cpu", cfg.progress,
                                        "train pixels").readable()
        baselines["raw_pixels"] = knn_protocols(*px_train, *px_val, splits.info.num_classes, cfg.k,
                                                cfg.temperature, cfg.protocol, cfg.search).scores
        rows.append({"features": "raw pixels", **baselines["raw_pixels"]})
    results: dict[str, Any] = {
        "suite": "knn",
        "checkpoint": cfg.checkpoint,
        "format": loaded.format,
        "dataset": splits.spec.dataset,
        "num_train": 0 if train_x is None else int(train_x.shape[0]),
        "num_val": int(val_x.shape[0]),
        "dropped_images": dropped,  # unreadable images left out of num_train / num_val
        "image_size": splits.image_size,
        "settings": {"feature": cfg.feature, "k": cfg.k, "temperature": cfg.temperature,
                     "protocol": cfg.protocol},
        "scores": outcome.scores,
        "baselines": baselines,
        "time_s": {"features": round(t_feat, 2), "knn": round(t_knn, 2)},
        "data": asdict(splits.spec),
    }
    columns = ["features", *outcome.scores]
    md = (f"# k-NN evaluation of `{cfg.checkpoint}` on {splits.spec.dataset}\n\n"
          f"`nn_loo`: official leave-one-out 1-NN within val ({results['num_val']} images); "
          f"`knn{cfg.k}_*`: weighted k-NN (k={cfg.k}, T={cfg.temperature}), train bank "
          f"({results['num_train']} images) -> val. Accuracy in %.\n\n"
          + markdown_table(rows, columns) + "\n")
    if cfg.save_features:  # e.g. for benchmarks/eval_speed.py --features
        saved = {"val": val_x.cpu(), "val_labels": val_y.cpu()}
        if train_x is not None and train_y is not None:
            saved |= {"train": train_x.cpu(), "train_labels": train_y.cpu()}
        save_atomic(saved, Path(session.out_dir) / "features.pt")
    write_results(session.out_dir, results, md)
    results["output_dir"] = str(session.out_dir)
    return results

"""``latentmim eval fewshot``: k-shot transfer with frozen features + logistic regression.

For each dataset, shot count k and seed: draw k training images per class from the pool
(seeded, without replacement; classes with fewer than k images contribute all they have), fit a
multinomial logistic regression (scikit-learn, L2, ``C``) on the L2-normalised frozen features,
and score top-1 on the whole test set. Report mean +- std over seeds (population std, as CoOp's
result parser does). Features are computed once per image: only the union of the sampled shots
and the test set pass through the encoder.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import Tensor
from torch.utils.data import Dataset, Subset

from latentmim.config.eval_schema import FewshotEvalConfig
from latentmim.data.info import DatasetInfo
from latentmim.data.seeding import derive_seed, seeded_subset
from latentmim.data.transforms import eval_transform
from latentmim.eval.data import channel_stats, load_split, make_loader, resolve_data
from latentmim.eval.fewshot.data import FewshotData, load_fewshot_data
from latentmim.eval.report import line_chart, markdown_table, write_results
from latentmim.eval.session import start_session
from latentmim.interop.load import Pretrained
from latentmim.probing.features import FeatureSet, extract_encoder_features
from latentmim.probing.knn import l2_normalize

SHOT_STREAM = 0x73686F74  # b"shot"


def sample_shots(labels: Tensor, k: int, seed: int) -> Tensor:
    """Indices of ``k`` random samples of every class present in ``labels`` (all if fewer).

    Args:
        labels: (N,) int64 labels of the pool.
        k: shots per class.
        seed: draw seed; each (seed, k) gives an independent draw.

    Returns:
        (sum_c min(k, n_c),) int64 indices, grouped by class in ascending class order.
    """
    g = torch.Generator().manual_seed(derive_seed(SHOT_STREAM, seed, k))
    out = []
    for c in labels.unique(sorted=True).tolist():
        idx = (labels == c).nonzero().flatten()
        out.append(idx[torch.randperm(idx.numel(), generator=g)[:k]])
    return torch.cat(out)


def fit_and_score(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, C: float = 1.0,
                  max_iter: int = 1000, seed: int = 0) -> float:
    """Top-1 accuracy (%) of a logistic regression on L2-normalised features.

    Args:
        train_x, train_y: (n, D) features and (n,) labels of the shots.
        test_x, test_y: (m, D), (m,).
        C: inverse regularisation strength.
        max_iter: L-BFGS iterations.
        seed: solver seed (lbfgs is deterministic; kept for other solvers).
    """
    xs, xt = (l2_normalize(x.double()).numpy() for x in (train_x, test_x))
    ys, yt = train_y.numpy(), test_y.numpy()
    if np.unique(ys).size == 1:  # one class seen: the only possible prediction
        return float(100.0 * (yt == ys[0]).mean())
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    clf.fit(xs, ys)
    return float(100.0 * (clf.predict(xt) == yt).mean())


def _features(loaded: Pretrained, ds: Dataset, data: FewshotData, cfg: FewshotEvalConfig,
              device: torch.device, desc: str) -> FeatureSet:
    mean, std = channel_stats(data.info, loaded.encoder.in_chans)
    loader = make_loader(ds, eval_transform(loaded.image_size, mean, std), cfg.batch_size, cfg.workers, device)
    return extract_encoder_features(loaded.encoder, loader, cfg.feature, device, cfg.precision, cfg.progress, desc)


def evaluate_dataset(loaded: Pretrained, data: FewshotData, cfg: FewshotEvalConfig,
                     device: torch.device) -> dict[str, Any]:
    """All (shots, seeds) runs of one dataset; returns per-k mean/std and per-seed accuracies."""
    draws = {(k, s): sample_shots(data.pool_labels, k, s) for k in cfg.shots for s in cfg.seeds}
    union = torch.cat(list(draws.values())).unique(sorted=True)
    pool = _features(loaded, Subset(data.pool, union.tolist()), data, cfg, device, f"{data.name} shot features")
    # An unreadable shot keeps its row (rows are addressed by position) but is left out of its draw.
    pool_x, pool_y, pool_ok = pool
    position = {int(i): p for p, i in enumerate(union.tolist())}
    test = seeded_subset(data.test, cfg.val_images, cfg.seed + 1)
    test_set = _features(loaded, test, data, cfg, device, f"{data.name} test features")
    test_x, test_y = test_set.readable()  # unreadable test images are dropped and counted
    per_k: dict[str, Any] = {}
    for k in cfg.shots:
        accs = []
        for s in cfg.seeds:
            rows = torch.tensor([position[int(i)] for i in draws[(k, s)]])
            rows = rows[pool_ok[rows]]
            accs.append(fit_and_score(pool_x[rows], pool_y[rows], test_x, test_y, cfg.C, cfg.max_iter, s))
        counts = torch.bincount(data.pool_labels[draws[(k, cfg.seeds[0])]])
        per_k[str(k)] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "per_seed": accs,
                         "min_shots_per_class": int(counts[counts > 0].min())}
    return {"split": data.split_source, "num_classes": int(data.pool_labels.max()) + 1,
            "pool_size": len(data.pool), "test_size": int(test_y.shape[0]),  # type: ignore[arg-type]
            "dropped_images": {"shots": pool.dropped, "test": test_set.dropped},
            "shots": per_k}


def run_fewshot_eval(cfg: FewshotEvalConfig) -> dict[str, Any]:
    """Few-shot transfer of ``cfg.checkpoint`` on ``cfg.datasets``; writes results and a plot."""
    session = start_session(cfg, "fewshot")
    loaded, device = session.loaded, session.device
    default = resolve_data(cfg, loaded)
    names = list(cfg.datasets) or [default.dataset]
    t0 = time.time()
    per_dataset: dict[str, Any] = {}
    for name in names:

        def registry_split(split: str, name: str = name) -> tuple[Dataset, DatasetInfo]:
            # The checkpoint's own dataset keeps its path; others use their default location.
            other = replace(cfg, dataset=name, data_path=None)
            return load_split(default if name == default.dataset else resolve_data(other, loaded), split)

        data = load_fewshot_data(name, cfg.transfer_root, cfg.download, cfg.seed, registry_split)
        per_dataset[name] = evaluate_dataset(loaded, data, cfg, device)
    results: dict[str, Any] = {
        "suite": "fewshot",
        "checkpoint": cfg.checkpoint,
        "format": loaded.format,
        "settings": {"shots": list(cfg.shots), "seeds": list(cfg.seeds), "feature": cfg.feature, "C": cfg.C,
                     "classifier": "logistic regression (scikit-learn, L2) on L2-normalised features"},
        "datasets": per_dataset,
        "time_s": round(time.time() - t0, 2),
    }
    rows = [{"dataset": n, **{f"{k}-shot": f"{r['shots'][str(k)]['mean']:.2f} ± {r['shots'][str(k)]['std']:.2f}"
                              for k in cfg.shots}} for n, r in per_dataset.items()]
    md = (f"# Few-shot transfer of `{cfg.checkpoint}`\n\n"
          f"Logistic regression on frozen `{cfg.feature}` features; top-1 (%) on the test set, mean ± std "
          f"over seeds {list(cfg.seeds)}. Splits: "
          + "; ".join(f"{n}: {r['split']}" for n, r in per_dataset.items()) + ".\n\n"
          + markdown_table(rows, ["dataset", *(f"{k}-shot" for k in cfg.shots)]) + "\n")
    write_results(session.out_dir, results, md)
    shots = sorted(cfg.shots)
    line_chart(session.out_dir / "fewshot.png", shots,
               {n: ([r["shots"][str(k)]["mean"] for k in shots], [r["shots"][str(k)]["std"] for k in shots])
                for n, r in per_dataset.items()},
               "few-shot transfer (logistic regression)", "shots per class", logx=True)
    results["output_dir"] = str(session.out_dir)
    return results

"""Measure one finished ablation row: Sim, NN, k-NN, LP (logreg), throughput, NN against time.

Everything is read from the row's run folder (``checkpoint_latest.pth``, ``metrics.jsonl``,
``eval.jsonl``), so a row can be evaluated long after, or on another machine than, its training.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from latentmim.ablate.logreg_probe import logreg_probe_accuracy
from latentmim.config.schema import PretrainConfig
from latentmim.engine.data import PretrainData, build_pretrain_data
from latentmim.interop.load import load_pretrained
from latentmim.losses.similarity import avg_similarity
from latentmim.masking.patchify import all_ids, patchify
from latentmim.methods.factory import encoder_from_config
from latentmim.models.vit import ViTEncoder
from latentmim.probing.features import extract_features
from latentmim.probing.knn import loo_1nn_accuracy, weighted_knn_accuracy
from latentmim.training.precision import resolve_device


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file (a half-written last line is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def final_similarities(records: list[dict[str, Any]], tail: float = 0.1) -> dict[str, float]:
    """Mean of each logged similarity over the last ``tail`` fraction of the step records."""
    if not records:
        return {}
    last = records[-max(1, round(len(records) * tail)):]
    out = {}
    for key in ("avg_sim_trg", "avg_sim_pred", "avg_sim_vis"):
        values = [r[key] for r in last if key in r]
        if values:
            out[key] = float(sum(values) / len(values))
    return out


def nn_against_time(steps: list[dict[str, Any]], evals: list[dict[str, Any]], images_per_epoch: int) -> list[tuple[float, float]]:
    """(training seconds, NN %) at every NN evaluation of a run.

    Training time is rebuilt from the logs: the last record of an epoch holds that epoch's
    images/s, so an epoch took ``images_per_epoch / img_per_s`` seconds (evaluation excluded;
    this also holds across a resume).
    """
    rate: dict[int, float] = {}
    for r in steps:
        rate[math.ceil(r["epoch"] - 1e-6)] = r["img_per_s"]  # epoch e's records have e-1 < epoch <= e
    points, elapsed, done = [], 0.0, 0
    for ev in sorted(evals, key=lambda e: e["epoch"]):
        while done < ev["epoch"]:
            done += 1
            elapsed += images_per_epoch / rate[done] if rate.get(done) else 0.0
        if "nn_loo" in ev:
            points.append((elapsed, float(ev["nn_loo"])))
    return points


def train_images_per_second(steps: list[dict[str, Any]]) -> float | None:
    """Median over epochs of the training throughput (the last record of each epoch)."""
    last: dict[int, float] = {}
    for r in steps:
        last[math.ceil(r["epoch"] - 1e-6)] = r["img_per_s"]
    return round(statistics.median(last.values()), 1) if last else None


@torch.no_grad()
def _features(encoder: ViTEncoder, imgs: Tensor) -> Tensor:
    """One pass, three outputs, concatenated: (B, 2D+1).

    Columns: avg-pooled pre-norm patch tokens (the official NN feature), avg-pooled normed patch
    tokens (the LP feature), and S of the image's normed patch tokens (collapse of the encoder).
    """
    patches = patchify(imgs, encoder.patch_size)
    normed, prenorm = encoder.forward_patches(patches, all_ids(imgs.shape[0], encoder.grid_size, imgs.device),
                                              return_prenorm=True)
    sims = torch.stack([avg_similarity(normed[i : i + 1, 1:]) for i in range(imgs.shape[0])])
    return torch.cat([prenorm[:, 1:].mean(1), normed[:, 1:].mean(1), sims[:, None]], dim=1).float()


def encoder_scores(encoder: ViTEncoder, cfg: PretrainConfig, data: PretrainData, progress: bool = True) -> dict[str, float]:
    """NN, k-NN, LP (logreg) and S(enc) of one frozen encoder on the run's NN-monitor images.

    Returns:
        ``nn`` (official LOO 1-NN on val, %), ``knn`` (weighted k-NN train -> val, %), ``lp``
        (logreg probe train -> val, %), ``sim_enc`` (S of the patch tokens of val images).
    """
    device = resolve_device(cfg.env.device)
    encoder.to(device).eval()
    d = encoder.embed_dim

    def encode(x: Tensor) -> Tensor:
        return _features(encoder, x)

    train_f, train_y = extract_features(encode, data.nn_train, device, progress, "ablate: train features").readable()
    val_f, val_y = extract_features(encode, data.nn_val, device, progress, "ablate: val features").readable()
    knn = weighted_knn_accuracy(train_f[:, :d], train_y, val_f[:, :d], val_y, data.nn_classes,
                                k=cfg.knn_k, temperature=cfg.knn_t, topk=(1,))
    return {
        "nn": loo_1nn_accuracy(val_f[:, :d], val_y),
        "knn": knn["top1"],
        "lp": logreg_probe_accuracy(train_f[:, d : 2 * d], train_y, val_f[:, d : 2 * d], val_y),
        "sim_enc": float(val_f[:, -1].mean()),
    }


def evaluate_random_init(cfg: PretrainConfig, progress: bool = True) -> dict[str, float]:
    """:func:`encoder_scores` of the encoder every row starts from (seeded as the engine seeds it).

    The table's reference line: what training added on top of random features.
    """
    data = build_pretrain_data(cfg, resolve_device(cfg.env.device))
    torch.manual_seed(cfg.env.seed)  # the engine's initialisation seed, set right before build_model
    encoder = encoder_from_config(cfg, data.info.in_chans)
    return encoder_scores(encoder, cfg, data, progress)


def evaluate_row(cfg: PretrainConfig, run_dir: Path, progress: bool = True) -> dict[str, Any]:
    """All measured columns of one trained row.

    Args:
        cfg: the row's configuration (data and NN settings).
        run_dir: the row's run folder.
        progress: show feature-extraction progress bars.

    Returns:
        :func:`encoder_scores` of the trained encoder, plus ``sim_trg``, ``sim_pred`` (final
        logged S, None if the method has none), ``img_per_s``, ``epochs``, ``nn_curve``
        [(s, NN %)] and ``collapse`` (the guard's events).
    """
    loaded = load_pretrained(run_dir / "checkpoint_latest.pth")
    encoder = loaded.encoder
    data = build_pretrain_data(cfg, resolve_device(cfg.env.device))
    scores = encoder_scores(encoder, cfg, data, progress)
    steps, evals = read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(run_dir / "eval.jsonl")
    sims = final_similarities(steps)
    images_per_epoch = (len(data.loader) // cfg.accum_iter) * cfg.accum_iter * cfg.batch_size
    return {
        "sim_trg": sims.get("avg_sim_trg"),
        "sim_pred": sims.get("avg_sim_pred"),
        **scores,
        "img_per_s": train_images_per_second(steps),
        "epochs": cfg.epochs,
        "nn_curve": nn_against_time(steps, evals, images_per_epoch),
        "collapse": read_jsonl(run_dir / "collapse.jsonl"),
    }


def evaluate_raw_pixels(cfg: PretrainConfig, progress: bool = True) -> dict[str, float]:
    """NN, k-NN and LP (logreg) of raw normalised pixels: the floor a learned feature must beat."""
    from latentmim.probing.features import raw_pixel_features

    device = resolve_device(cfg.env.device)
    data = build_pretrain_data(cfg, device)
    train_f, train_y = extract_features(raw_pixel_features, data.nn_train, device, progress, "ablate: train pixels").readable()
    val_f, val_y = extract_features(raw_pixel_features, data.nn_val, device, progress, "ablate: val pixels").readable()
    knn = weighted_knn_accuracy(train_f, train_y, val_f, val_y, data.nn_classes,
                                k=cfg.knn_k, temperature=cfg.knn_t, topk=(1,))
    return {"nn": loo_1nn_accuracy(val_f, val_y), "knn": knn["top1"],
            "lp": logreg_probe_accuracy(train_f, train_y, val_f, val_y)}


def segmentation_miou(run_dir: Path, num_images: int, progress: bool = False,
                      probe_images: int = 0) -> dict[str, float]:  # fmt: skip
    """Unsupervised segmentation mIoU (x100, best cut per image) of a trained row and its baselines,
    and with ``probe_images`` the linear segmentation probe's semantic and foreground mIoU.

    Runs ``latentmim eval segment`` on the row's checkpoint (val images with ground-truth masks);
    figures land in ``run_dir/eval_segment``.

    Returns:
        ``miou`` (the trained encoder), ``miou_raw_pixels`` and ``miou_random_init``; with the probe
        also ``probe_semantic``, ``probe_foreground`` and their ``_raw_pixels`` / ``_random_init``
        values; ``segment_images`` and ``segment_probe_images`` say what was measured.
    """
    from latentmim.eval.dense.segment import run_segment_eval

    res = run_segment_eval(checkpoint=str(run_dir / "checkpoint_latest.pth"), num_images=num_images,
                           output_dir=str(run_dir / "eval_segment"), tsne=False, progress=progress, workers=0,
                           probe_images=probe_images)  # fmt: skip
    miou = res["miou"]
    out: dict[str, float] = {"segment_images": num_images, "segment_probe_images": probe_images}
    for source in ("encoder", "raw_pixels", "random_init"):
        suffix = "" if source == "encoder" else f"_{source}"
        if source in miou:
            out[f"miou{suffix}"] = 100 * miou[source]["best_k"]
        for task, value in res.get("probe", {}).get(source, {}).items():
            out[f"probe_{task}{suffix}"] = 100 * value
    return out

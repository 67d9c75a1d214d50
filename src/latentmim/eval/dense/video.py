"""Video object segmentation (DAVIS-2017 semi-supervised protocol) by label propagation.

For every sequence the first frame's annotation is propagated with the encoder's patch features
(:mod:`latentmim.eval.dense.video_propagation`); the predicted masks are written as indexed PNGs with
the annotation's palette (``output_dir/masks/<sequence>/<frame>.png``, readable by the official
DAVIS tools) and scored with J, F and J&F (:mod:`latentmim.eval.dense.vos_metrics`) when the
ground truth is there. Without ``davis_root`` the suite first writes procedural videos
(:class:`~latentmim.data.synthetic_video.SyntheticVideos`) as a DAVIS tree under
``output_dir/synthetic_davis`` and then runs exactly the same reader and pipeline on it.

Frames are resized (aspect kept, sides rounded to the patch size) so their short side is
``input_size`` (default: the frame's own short side, as DINO evaluates at 480p); the
predictions are upsampled back to the original frame size before the argmax.
``baselines=true`` also propagates with raw pixel patches (a reference that uses colour only) and
scores the first mask copied to every frame (a reference without any motion).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from latentmim.config.eval_load import validate_eval_config
from latentmim.config.eval_schema import VideoEvalConfig
from latentmim.data.errors import DataError
from latentmim.data.synthetic_video import SyntheticVideos
from latentmim.eval.dense.davis import (
    DavisSequence,
    list_sequences,
    read_annotation,
    read_frame,
    write_annotation,
    write_davis,
)
from latentmim.eval.dense.features import (
    FeatureFn,
    encoder_features,
    image_to_tensor,
    patch_aligned_size,
    pixel_features,
    training_normalisation,
)
from latentmim.eval.dense.video_plot import save_video_strip
from latentmim.eval.dense.video_propagation import (
    Propagation,
    labels_to_soft,
    propagate,
    soft_to_labels,
)
from latentmim.eval.dense.vos_metrics import BOUND_TH, sequence_scores, summarize
from latentmim.eval.session import resolve_precision
from latentmim.interop.load import INIT_PREFIX, load_pretrained
from latentmim.runtime.progress import live_bars
from latentmim.training.precision import resolve_device

VOID = 255
STATIC = "static_first_mask"  # the baseline that repeats the first mask


def segment_sequence(
    frames: list[np.ndarray],
    first_mask: np.ndarray,
    feature_fn: FeatureFn,
    patch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    input_size: int | None = None,
    params: Propagation = Propagation(),
    device: torch.device | str = "cpu",
    on_frame: Callable[[], None] | None = None,
) -> np.ndarray:
    """Propagate the first frame's mask through a video.

    Args:
        frames: (H, W, 3) uint8 frames (original size).
        first_mask: (H, W) ints, the first frame's annotation (0 background, object ids, 255
            void, which counts as background here).
        feature_fn: (1, C, h*P, w*P) normalised frame -> (h, w, D) features; C = len(mean)
            (frames are converted to one channel for a 1-channel encoder).
        patch_size: the encoder's patch size (the frame is resized to a multiple of it).
        mean, std: normalisation of the frames.
        input_size: short side fed to the encoder; None = the frame's own short side.
        params: propagation parameters.
        device: where features and propagation run.
        on_frame: called once per processed frame (progress bars).

    Returns:
        (T, H, W) uint8 predicted label maps with the annotation's object ids.
    """
    height, width = first_mask.shape
    ids = np.array([i for i in np.unique(first_mask) if i not in (0, VOID)], dtype=np.int64)
    lut = np.concatenate([[0], ids]).astype(np.uint8)  # label index -> object id
    index = np.zeros(256, dtype=np.int64)  # object id -> label index (void -> background)
    index[ids] = np.arange(1, len(ids) + 1)
    size_h, size_w = patch_aligned_size(height, width, input_size or min(height, width), patch_size)
    grid = (size_h // patch_size, size_w // patch_size)

    def features() -> Iterator[Tensor]:
        for frame in frames:
            pil = Image.fromarray(frame).convert("L" if len(mean) == 1 else "RGB")
            img = np.asarray(pil.resize((size_w, size_h), Image.Resampling.BICUBIC))
            yield feature_fn(image_to_tensor(img, mean, std).to(device)).flatten(0, 1)  # (N, D)
            if on_frame is not None:
                on_frame()

    first = torch.from_numpy(index[first_mask.astype(np.int64)])  # (H, W) label indices
    soft0 = labels_to_soft(first, len(ids) + 1, *grid)
    out = np.empty((len(frames), height, width), dtype=np.uint8)
    with torch.no_grad():
        for t, soft in enumerate(propagate(features(), soft0, grid, params)):
            if t > 0:
                out[t] = lut[soft_to_labels(soft.cpu(), grid, height, width).numpy()]
    out[0] = lut[first.numpy()]  # the given frame is written as given (void -> background)
    return out


def load_sequence(seq: DavisSequence) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """Frames, the annotations (T, H, W) -- only the first frame's (1, H, W) when the others
    are missing -- and the palette. Raises DataError for unusable annotations."""
    frames = [read_frame(p) for p in seq.frames]
    first, palette = read_annotation(seq.annotations[0])
    if first.shape != frames[0].shape[:2]:
        raise DataError(f"davis: annotation '{seq.annotations[0]}' size {first.shape} differs from its frame")
    if not np.isin(first, (0, VOID), invert=True).any():
        raise DataError(f"davis: first-frame annotation '{seq.annotations[0]}' has no objects")
    if not seq.has_ground_truth:
        return frames, first[None], palette
    return frames, np.stack([read_annotation(a)[0] for a in seq.annotations]), palette


def _strip(out: Path, name: str, frames: list[np.ndarray], pred: np.ndarray, gt: np.ndarray | None,
           palette: list[int], scores: str) -> str:  # fmt: skip
    ts = sorted(set(np.linspace(0, len(frames) - 1, min(6, len(frames))).round().astype(int).tolist()))
    path = out / "figures" / f"{name}.png"
    truth = [gt[t] if gt is not None else None for t in ts]
    save_video_strip(path, [frames[t] for t in ts], [pred[t] for t in ts], truth, palette, ts, f"{name}  {scores}")
    return str(path.relative_to(out))


def _object_scores(scores: dict[int, dict[str, np.ndarray]]) -> dict:
    """A sequence's summary plus each object's mean J and F."""
    return {**summarize({str(o): s for o, s in scores.items()}),
            "objects": {str(o): {"J": float(s["J"].mean()), "F": float(s["F"].mean())}
                        for o, s in scores.items()}}  # fmt: skip


def evaluate_sequences(
    sequences: list[DavisSequence],
    feature_fns: dict[str, FeatureFn],
    output_dir: Path,
    patch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    input_size: int | None = None,
    params: Propagation = Propagation(),
    bound_th: float = BOUND_TH,
    static_baseline: bool = False,
    figures: bool = True,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Propagate, write and score every sequence with every feature source.

    The first source (the encoder) writes its masks (``output_dir/masks/<seq>/<frame>.png``)
    and figures; the others are scored only. ``static_baseline`` also scores the first mask
    repeated in every frame (no motion at all). Sequences without full annotations get masks
    and figures but no scores.

    Returns:
        ``{"summary": {source: DAVIS summary over all objects}, "sequences": [records]}``.
    """
    primary = next(iter(feature_fns))
    per_object: dict[str, dict[str, dict]] = {s: {} for s in [*feature_fns, STATIC]}
    records = []
    total = sum(len(s.frames) for s in sequences) * len(feature_fns)
    with tqdm(total=total, desc="video", unit="frame", disable=not live_bars(progress)) as bar:
        for seq in sequences:
            frames, gt, palette = load_sequence(seq)
            obj_ids = [int(i) for i in np.unique(gt[0]) if i not in (0, VOID)]
            record: dict = {"name": seq.name, "frames": len(frames), "objects": obj_ids, "scores": {}}
            for source, fn in feature_fns.items():
                bar.set_postfix_str(f"{seq.name} ({source})")
                pred = segment_sequence(frames, gt[0], fn, patch_size, mean, std, input_size, params,
                                        device, bar.update)  # fmt: skip
                if source == primary:
                    for t, p in enumerate(seq.frames):
                        write_annotation(output_dir / "masks" / seq.name / f"{p.stem}.png", pred[t], palette)
                    shown = pred
                if seq.has_ground_truth:
                    scores = sequence_scores(pred, gt, obj_ids, VOID, bound_th)
                    per_object[source].update({f"{seq.name}_{o}": s for o, s in scores.items()})
                    record["scores"][source] = _object_scores(scores)
            if static_baseline and seq.has_ground_truth:
                scores = sequence_scores(np.repeat(gt[:1], len(gt), axis=0), gt, obj_ids, VOID, bound_th)
                per_object[STATIC].update({f"{seq.name}_{o}": s for o, s in scores.items()})
                record["scores"][STATIC] = _object_scores(scores)
            if figures:
                text = f"J&F {record['scores'][primary]['J&F']:.3f}" if record["scores"] else ""
                record["figure"] = _strip(output_dir, seq.name, frames, shown,
                                          gt if seq.has_ground_truth else None, palette, text)  # fmt: skip
            records.append(record)
    return {"summary": {s: summarize(objs) for s, objs in per_object.items() if objs}, "sequences": records}


def _markdown(results: dict, header: str) -> str:
    lines = [header, "", "| sequence | features | J&F | J mean | F mean |", "|---|---|---|---|---|"]
    for rec in results["sequences"]:
        for source, s in rec["scores"].items():
            lines.append(f"| {rec['name']} | {source} | {s['J&F']:.3f} | {s['J_mean']:.3f} | {s['F_mean']:.3f} |")
    for source, s in results["summary"].items():
        lines.append(f"| **mean** | {source} | **{s['J&F']:.3f}** | {s['J_mean']:.3f} | {s['F_mean']:.3f} |")
    if not results["summary"]:
        lines.append("| (no ground truth beyond the first frame: masks written, not scored) | | | | |")
    return "\n".join(lines) + "\n"


def run_video_eval(cfg: VideoEvalConfig | None = None, **options: object) -> dict:
    """DAVIS-protocol video object segmentation of a checkpoint; writes masks, figures, results.

    Args:
        cfg: a parsed configuration, or None to build one from ``options``.
        **options: fields of :class:`VideoEvalConfig` (``checkpoint`` is required; e.g.
            ``davis_root``, ``dataset``, ``output_dir``, ``n_last_frames``, ``device``).

    Returns:
        The dict written to ``output_dir/results.json``: ``summary`` ``{source: {"J&F",
        "J_mean", "J_recall", "F_mean", "F_recall"}}`` (sources ``encoder``, ``raw_pixels``,
        ``static_first_mask``) and per-sequence records.
    """
    cfg = cfg if cfg is not None else VideoEvalConfig(**options)  # type: ignore[arg-type]
    validate_eval_config(cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    loaded = load_pretrained(cfg.checkpoint)
    cfg.precision = resolve_precision(cfg.precision, loaded)
    encoder = loaded.encoder
    out = Path(cfg.output_dir or Path(cfg.checkpoint.removeprefix(INIT_PREFIX)).parent / "eval_video")
    if cfg.davis_root:
        root = Path(cfg.davis_root)
    else:  # procedural videos, written as a DAVIS tree and read back like DAVIS
        root = out / "synthetic_davis"
        videos = SyntheticVideos(cfg.num_videos, cfg.num_frames, cfg.video_size, cfg.seed)
        write_davis(root, ((v.name, v.frames, v.masks) for v in (videos[i] for i in range(len(videos)))),
                    split=cfg.split, resolution=cfg.resolution)  # fmt: skip
    sequences = list_sequences(root, cfg.split, cfg.resolution, names=list(cfg.sequences) or None)
    device = resolve_device(cfg.device)
    pre = loaded.config
    mean, std = training_normalisation(pre.dataset if pre else "imagenet", encoder.in_chans)
    fns = {"encoder": encoder_features(encoder.to(device), cfg.feature, cfg.pe_mode, cfg.precision)}
    if cfg.baselines:
        fns["raw_pixels"] = pixel_features(encoder.patch_size)
    params = Propagation(cfg.n_last_frames, cfg.topk, cfg.temperature, cfg.radius)
    out.mkdir(parents=True, exist_ok=True)
    res = evaluate_sequences(sequences, fns, out, encoder.patch_size, mean, std, cfg.input_size, params,
                             cfg.bound_th, cfg.baselines, cfg.figures, device, cfg.progress)  # fmt: skip
    results = {"eval": "video", "output_dir": str(out), "davis_root": str(root), "config": asdict(cfg), **res}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    header = (f"Video object segmentation (DAVIS-2017 semi-supervised protocol, label propagation) of "
              f"`{cfg.checkpoint}` on {len(sequences)} sequences of `{root}`")  # fmt: skip
    (out / "results.md").write_text(_markdown(results, header))
    return results

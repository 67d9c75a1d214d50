"""Unsupervised segmentation by hierarchical clustering of patch features, with t-SNE figures.

Protocol (METHOD.md §4): per image, the encoder's patch tokens (``prenorm`` = before the final
norm, as in the NN protocol, or ``normed``) are L2-normalised and clustered by Ward
agglomerative clustering; the tree is cut at 3, 4 and 5 clusters; the label maps are upsampled
to the image (nearest patch) and overlaid on it; a t-SNE of the same features is coloured by the
finest cut. One PNG per image: image | overlays | t-SNE.

Where ground-truth segments exist (``dataset=synthetic``: the instance map, background = one
segment), mIoU is computed **at pixel resolution** on the encoder's input image: the upsampled
cluster map is matched one-to-one to the segments by the Hungarian algorithm (maximum total
IoU) and the IoUs are averaged over the ground-truth segments. ``best_k`` averages each image's
best cut. With ``baselines=true`` the same clustering is applied to raw pixel patches and to the
same architecture at its pre-training initialisation (``init:PATH``), which tells what the
training added.

With ``probe_images=N`` (``synthetic`` only) a linear segmentation probe is added
(:mod:`latentmim.eval.dense.segment_probe`): a logistic regression on the patch tokens of the
first N train images, scored on the ``num_images`` val images (use a few hundred of each), for
every feature source. It asks what each token knows about its pixels' class, where the
clustering asks whether tokens group by region.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import validate_eval_config
from latentmim.config.eval_schema import SegmentEvalConfig
from latentmim.data.errors import DataError
from latentmim.data.synthetic import SyntheticShapes
from latentmim.eval.data import channel_stats, load_split, resolve_data
from latentmim.eval.dense.features import (
    FeatureFn,
    encoder_features,
    image_to_tensor,
    patch_aligned_size,
    pixel_features,
    training_normalisation,
)
from latentmim.eval.dense.segment_cluster import (
    hierarchical_cuts,
    hungarian_miou,
    tsne_embedding,
    upsample_labels,
)
from latentmim.eval.dense.segment_plot import save_segmentation_figure
from latentmim.eval.dense.segment_probe import PROBE_TASKS, linear_probe_segmentation
from latentmim.eval.session import resolve_precision
from latentmim.interop.load import INIT_PREFIX, Pretrained, load_pretrained
from latentmim.runtime.progress import live_bars
from latentmim.training.precision import resolve_device


@dataclass
class SegmentSample:
    """One image to segment, already at the encoder's input size."""

    name: str
    image: np.ndarray  # (H, W, C) or (H, W) uint8
    segments: np.ndarray | None  # (H, W) ground-truth segment ids, when known
    classes: np.ndarray | None = None  # (H, W) ground-truth class ids (0 = background), when known


def _open_images(paths: list[str], mode: str) -> list[tuple[str, Image.Image]]:
    out = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"images: '{path}' does not exist")
        try:
            with Image.open(path) as img:
                out.append((Path(path).stem, img.convert(mode)))
        except OSError as err:
            raise DataError(f"images: cannot read '{path}': {err}") from None
    return out


def synthetic_samples(split: str, num: int, size: int, seed: int, gray: bool) -> list[SegmentSample]:
    """The first ``num`` images of a ``synthetic`` split rendered at ``size`` px, with their
    instance maps (the clustering's segments) and class masks (the probe's labels)."""
    shapes = SyntheticShapes(split, num, image_size=size, seed=seed)
    samples = []
    for i in range(num):
        scene = shapes.scene(i)
        img = np.asarray(Image.fromarray(scene.image).convert("L" if gray else "RGB"))
        samples.append(SegmentSample(f"synthetic_{i:04d}", img, scene.instances, scene.mask))
    return samples


def load_samples(cfg: SegmentEvalConfig, loaded: Pretrained, size: int, patch: int,
                 gray: bool) -> tuple[list[SegmentSample], tuple[float, ...], tuple[float, ...]]:  # fmt: skip
    """The images to segment, resized so the short side is ``size`` (sides multiples of
    ``patch``), and the normalisation to apply.

    ``synthetic`` images are rendered at ``size`` directly (pixel-exact ground truth, the
    instance map: background and each object are segments). Files use the normalisation of the
    checkpoint's pre-training data, dataset images their dataset's.
    """
    mode = "L" if gray else "RGB"
    in_chans = 1 if gray else 3
    if cfg.images:
        pre = loaded.config
        mean, std = training_normalisation(pre.dataset if pre else "imagenet", in_chans)
        pils = _open_images(list(cfg.images), mode)
    else:
        spec = resolve_data(cfg, loaded)
        ds, info = load_split(spec, "val")
        mean, std = channel_stats(info, in_chans)
        if spec.dataset == "synthetic":
            return synthetic_samples("val", cfg.num_images, size, spec.synthetic_seed, gray), mean, std
        pils = [(f"{spec.dataset}_{i:04d}", ds[i][0].convert(mode))
                for i in range(min(cfg.num_images, len(ds)))]  # fmt: skip
    samples = []
    for name, pil in pils:
        h, w = patch_aligned_size(pil.height, pil.width, size, patch)
        samples.append(SegmentSample(name, np.asarray(pil.resize((w, h), Image.Resampling.BICUBIC)), None))
    return samples, mean, std


def _cluster_image(feats: np.ndarray, grid: tuple[int, int], size: tuple[int, int],
                   clusters: list[int], segments: np.ndarray | None) -> tuple[dict, dict, dict]:  # fmt: skip
    """Cuts of one feature map: (patch labels {k: (N,)}, pixel maps {k: (H, W)}, mIoU {k})."""
    cuts = hierarchical_cuts(feats, tuple(clusters))
    maps = {k: upsample_labels(lab.reshape(grid), *size) for k, lab in cuts.items()}
    miou = {k: hungarian_miou(m, segments) for k, m in maps.items()} if segments is not None else {}
    return cuts, maps, miou


@torch.no_grad()
def segment_images(
    samples: list[SegmentSample],
    feature_fns: dict[str, FeatureFn],
    patch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    output_dir: Path,
    clusters: list[int] | tuple[int, ...] = (3, 4, 5),
    tsne: bool = True,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    figures: int | None = None,
) -> list[dict]:
    """Cluster and score every sample with every feature source; plot the first source.

    Args:
        samples: images (and ground truth) at the encoder's input size.
        feature_fns: ``{name: (1, C, H, W) -> (h, w, D)}``; the first one (the encoder) gets
            the figures (``output_dir/figures/<name>.png``), the others are scored only.
        patch_size: P, so the grid is (H/P, W/P).
        mean, std: normalisation of the images.
        clusters: cluster counts of the cuts.
        tsne: add the t-SNE panel (coloured by the finest cut).
        figures: plot only the first N samples (None = all).
        seed: t-SNE seed.

    Returns:
        One record per image: ``name``, ``grid``, ``figure`` (plotted ones) and, with ground truth,
        ``num_segments`` and ``miou`` ``{source: {k: mIoU}}``.
    """
    clusters = list(clusters)
    primary = next(iter(feature_fns))
    records = []
    for i, s in enumerate(tqdm(samples, desc="segment", unit="img", disable=not live_bars(progress))):
        x = image_to_tensor(s.image, mean, std).to(device)  # (1, C, H, W)
        size = (x.shape[-2], x.shape[-1])
        grid = (size[0] // patch_size, size[1] // patch_size)
        if grid[0] * grid[1] < max(max(clusters), 4):
            raise ConfigError(f"config key 'input_size': {grid[0]}x{grid[1]} patches are too few for "
                              f"{max(clusters)} clusters")  # fmt: skip
        record: dict = {"name": s.name, "grid": list(grid), "miou": {}}
        for source, fn in feature_fns.items():
            feats = fn(x).flatten(0, 1).float().cpu().numpy()  # (N, D)
            cuts, maps, miou = _cluster_image(feats, grid, size, clusters, s.segments)
            if s.segments is not None:
                record["miou"][source] = {str(k): v for k, v in miou.items()}
            if source == primary and (figures is None or i < figures):
                xy = tsne_embedding(feats, seed) if tsne else None
                fig = output_dir / "figures" / f"{s.name}.png"
                save_segmentation_figure(fig, s.image, maps, xy, cuts[max(clusters)], s.name, miou or None)
                record["figure"] = str(fig.relative_to(output_dir))
        if s.segments is not None:
            record["num_segments"] = int(len(np.unique(s.segments)))
        records.append(record)
    return records


def _summary(records: list[dict], clusters: list[int]) -> dict[str, dict[str, float]]:
    """Mean mIoU over the images with ground truth, per feature source and cut (+ best_k)."""
    scored = [r for r in records if r["miou"]]
    out: dict[str, dict[str, float]] = {}
    for source in scored[0]["miou"] if scored else []:
        per = np.array([[r["miou"][source][str(k)] for k in clusters] for r in scored])  # (images, cuts)
        out[source] = {**{str(k): float(v) for k, v in zip(clusters, per.mean(0), strict=True)},
                       "best_k": float(per.max(1).mean())}  # fmt: skip
    return out


def _probe_train_pairs(cfg: SegmentEvalConfig, loaded: Pretrained, size: int,
                       gray: bool) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The first ``probe_images`` train images of ``synthetic`` at ``size`` px with their class
    masks. Raises ConfigError for a dataset without ground-truth classes."""
    spec = resolve_data(cfg, loaded)
    if spec.dataset != "synthetic":
        raise ConfigError(f"config key 'probe_images': the linear probe needs ground-truth classes, "
                          f"which dataset '{spec.dataset}' has not (use dataset=synthetic)")  # fmt: skip
    return [(s.image, s.classes) for s in synthetic_samples("train", cfg.probe_images, size, spec.synthetic_seed, gray)]


def _probe_markdown(probe: dict[str, dict[str, float]], train_images: int, val_images: int) -> str:
    lines = [f"Linear segmentation probe: logistic regression on the patch tokens of {train_images} "
             f"train images, scored on the {val_images} val images (mIoU x100 at pixel resolution)",
             "", "| features | " + " | ".join(PROBE_TASKS) + " |", "|---|" + "---|" * len(PROBE_TASKS)]  # fmt: skip
    for source, row in probe.items():
        lines.append(f"| {source} | " + " | ".join(f"{100 * row[t]:.1f}" for t in PROBE_TASKS) + " |")
    return "\n".join(lines) + "\n"


def _markdown(summary: dict[str, dict[str, float]], clusters: list[int], header: str) -> str:
    lines = [header, "", "| features | " + " | ".join(f"mIoU@{k}" for k in clusters) + " | best k |",
             "|---|" + "---|" * (len(clusters) + 1)]  # fmt: skip
    for source, row in summary.items():
        cells = [f"{100 * row[str(k)]:.1f}" for k in clusters] + [f"{100 * row['best_k']:.1f}"]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    if not summary:
        lines.append("| (no ground truth: figures only) |" + " |" * (len(clusters) + 1))
    return "\n".join(lines) + "\n"


def run_segment_eval(cfg: SegmentEvalConfig | None = None, **options: object) -> dict:
    """Unsupervised segmentation evaluation of a checkpoint; writes figures and results.

    Args:
        cfg: a parsed configuration, or None to build one from ``options``.
        **options: fields of :class:`SegmentEvalConfig` (``checkpoint`` is required; e.g.
            ``output_dir``, ``images``, ``clusters``, ``input_size``, ``device``).

    Returns:
        The dict written to ``output_dir/results.json``: ``miou`` ``{source: {k: mean mIoU,
        "best_k": ...}}`` (sources ``encoder``, ``raw_pixels``, ``random_init``; empty without
        ground truth) and per-image ``images`` records.
    """
    cfg = cfg if cfg is not None else SegmentEvalConfig(**options)  # type: ignore[arg-type]
    validate_eval_config(cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    loaded = load_pretrained(cfg.checkpoint)
    cfg.precision = resolve_precision(cfg.precision, loaded)
    encoder = loaded.encoder
    out = Path(cfg.output_dir or Path(cfg.checkpoint.removeprefix(INIT_PREFIX)).parent / "eval_segment")
    size = cfg.input_size or loaded.image_size
    if size % encoder.patch_size:
        raise ConfigError(f"config key 'input_size': {size} is not a multiple of the patch size {encoder.patch_size}")
    samples, mean, std = load_samples(cfg, loaded, size, encoder.patch_size, gray=encoder.in_chans == 1)
    probe_train = _probe_train_pairs(cfg, loaded, size, encoder.in_chans == 1) if cfg.probe_images else []
    device = resolve_device(cfg.device)
    fns = {"encoder": encoder_features(encoder.to(device), cfg.feature, cfg.pe_mode, cfg.precision)}
    if cfg.baselines:
        fns["raw_pixels"] = pixel_features(encoder.patch_size)
        if loaded.format == "latentmim":  # the same architecture at its pre-training init
            init = load_pretrained(INIT_PREFIX + cfg.checkpoint).encoder.to(device)
            fns["random_init"] = encoder_features(init, cfg.feature, cfg.pe_mode, cfg.precision)
    out.mkdir(parents=True, exist_ok=True)
    records = segment_images(samples, fns, encoder.patch_size, mean, std, out, cfg.clusters, cfg.tsne,
                             cfg.seed, device, cfg.progress, cfg.figures)  # fmt: skip
    summary = _summary(records, list(cfg.clusters))
    results = {"eval": "segment", "output_dir": str(out), "config": asdict(cfg), "input_size": size,
               "miou": summary, "images": records}  # fmt: skip
    header = (f"Unsupervised segmentation of `{cfg.checkpoint}` on {len(records)} images "
              f"(input {size} px, {cfg.feature} features, mIoU x100 at pixel resolution)")  # fmt: skip
    markdown = _markdown(summary, list(cfg.clusters), header)
    if probe_train:
        val = [(s.image, s.classes) for s in samples if s.classes is not None]
        results["probe"] = linear_probe_segmentation(fns, probe_train, val, 1 + len(SyntheticShapes.classes),
                                                     encoder.patch_size, mean, std, device)  # fmt: skip
        markdown += "\n" + _probe_markdown(results["probe"], len(probe_train), len(val))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown)
    return results

"""The segmentation figure of the Latent MIM paper: image | cluster overlays | t-SNE."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def cluster_colours(num: int) -> np.ndarray:
    """(num, 3) float RGB in [0, 1]: tab10 for up to 10 clusters, tab20 / hsv beyond."""
    if num <= 10:
        return np.asarray(plt.get_cmap("tab10").colors[:num])
    if num <= 20:
        return np.asarray(plt.get_cmap("tab20").colors[:num])
    return plt.get_cmap("hsv")(np.linspace(0, 1, num, endpoint=False))[:, :3]


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blend a label map over an image.

    Args:
        image: (H, W, 3) or (H, W) uint8.
        labels: (H, W) int labels 0..k-1.
        alpha: weight of the label colour.

    Returns:
        (H, W, 3) uint8.
    """
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    colours = cluster_colours(int(labels.max()) + 1)[labels] * 255.0  # (H, W, 3)
    return np.clip((1 - alpha) * rgb + alpha * colours, 0, 255).astype(np.uint8)


def save_segmentation_figure(
    path: str | Path,
    image: np.ndarray,
    label_maps: dict[int, np.ndarray],
    tsne_xy: np.ndarray | None,
    tsne_labels: np.ndarray | None,
    title: str = "",
    scores: dict[int, float] | None = None,
) -> None:
    """One row: the image, one overlay per cluster count, and the t-SNE scatter.

    Args:
        path: PNG path.
        image: (H, W, 3) or (H, W) uint8, the encoder's input.
        label_maps: ``{k: (H, W) labels}`` upsampled to the image.
        tsne_xy: (N, 2) t-SNE of the patch features, or None to leave the panel out.
        tsne_labels: (N,) cluster of every patch (colours of the points).
        title: figure title.
        scores: optional ``{k: mIoU}`` shown in the panel titles.
    """
    panels = 1 + len(label_maps) + (tsne_xy is not None)
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 2.9), squeeze=False)
    axes = axes[0]
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
    axes[0].set_title("image", fontsize=9)
    for ax, (k, labels) in zip(axes[1:], sorted(label_maps.items()), strict=False):
        ax.imshow(overlay(image, labels))
        extra = f"  mIoU {scores[k]:.2f}" if scores and k in scores else ""
        ax.set_title(f"{k} clusters{extra}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if tsne_xy is not None and tsne_labels is not None:
        ax = axes[-1]
        ax.scatter(tsne_xy[:, 0], tsne_xy[:, 1], c=cluster_colours(int(tsne_labels.max()) + 1)[tsne_labels],
                   s=10, linewidths=0)  # fmt: skip
        ax.set_title(f"t-SNE of patches ({int(tsne_labels.max()) + 1} clusters)", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

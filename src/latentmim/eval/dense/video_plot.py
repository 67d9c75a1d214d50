"""A strip of frames of one video with the propagated masks (top) and the ground truth (bottom)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def palette_overlay(frame: np.ndarray, labels: np.ndarray, palette: list[int], alpha: float = 0.5) -> np.ndarray:
    """Blend palette colours of the non-background labels over a frame.

    Args:
        frame: (H, W, 3) uint8.
        labels: (H, W) int labels; 0 (background) and 255 (void) are left uncoloured.
        palette: flat RGB palette (768 ints).

    Returns:
        (H, W, 3) uint8 with white outlines between labels.
    """
    colours = np.asarray(palette, dtype=np.float32).reshape(-1, 3)[labels]  # (H, W, 3)
    fg = ((labels > 0) & (labels < 255))[..., None]
    out = np.where(fg, (1 - alpha) * frame + alpha * colours, frame)
    # White outlines where the label changes, so objects stay visible on any colour.
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    out[edge] = 255.0
    return out.astype(np.uint8)


def save_video_strip(
    path: str | Path,
    frames: list[np.ndarray],
    predicted: list[np.ndarray],
    truth: list[np.ndarray | None],
    palette: list[int],
    frame_ids: list[int],
    title: str = "",
) -> None:
    """Save a 2-row grid: prediction overlays above ground-truth overlays (when known).

    Args:
        path: PNG path.
        frames: (H, W, 3) uint8 frames to show.
        predicted: (H, W) label maps aligned with ``frames``.
        truth: ground-truth label maps or None.
        palette: DAVIS palette.
        frame_ids: frame numbers for the column titles.
        title: figure title.
    """
    rows = 2 if any(t is not None for t in truth) else 1
    cols = len(frames)
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols * w / max(h, w) + 0.6, 1.9 * rows + 0.3),
                             squeeze=False)  # fmt: skip
    for c, (frame, pred, gt, t) in enumerate(zip(frames, predicted, truth, frame_ids, strict=True)):
        axes[0, c].imshow(palette_overlay(frame, pred, palette))
        axes[0, c].set_title(f"frame {t}", fontsize=8)
        if rows == 2:
            axes[1, c].imshow(palette_overlay(frame, gt, palette) if gt is not None else frame)
    axes[0, 0].set_ylabel("propagated", fontsize=8)
    if rows == 2:
        axes[1, 0].set_ylabel("ground truth", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Reading and writing the DAVIS-2017 folder layout.

::

    ROOT/JPEGImages/480p/<sequence>/00000.jpg ...   RGB frames
    ROOT/Annotations/480p/<sequence>/00000.png ...  indexed ("P" mode) PNGs: 0 background,
                                                    k = object k, 255 = void
    ROOT/ImageSets/2017/val.txt                     one sequence name per line

Semi-supervised evaluation needs the first frame's annotation only; the others, when present,
are the ground truth the propagated masks are scored against. Predictions are written in the
same indexed-PNG format, with the first annotation's palette, so the official DAVIS tools
read them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from latentmim.data.errors import DataError

FRAME_EXTS = (".jpg", ".jpeg", ".png")


def voc_palette(num_colors: int = 256) -> list[int]:
    """The PASCAL VOC / DAVIS colour map as a flat [r0, g0, b0, r1, ...] list.

    Colour i spreads the bits of i over the three channels, most significant bit first
    (1 -> dark red, 2 -> dark green, 3 -> olive, ...), so neighbouring ids look different.
    """
    palette = []
    for i in range(num_colors):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


@dataclass(frozen=True)
class DavisSequence:
    """One video: its frames and whatever annotations exist, in frame order.

    Attributes:
        name: sequence name (folder name).
        frames: paths of the RGB frames.
        annotations: paths of the indexed PNGs, aligned with ``frames`` (None where missing);
            the first one is always present.
    """

    name: str
    frames: tuple[Path, ...]
    annotations: tuple[Path | None, ...]

    @property
    def has_ground_truth(self) -> bool:
        """True when every frame has an annotation (the sequence can be scored)."""
        return all(a is not None for a in self.annotations)


def read_frame(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as err:
        raise DataError(f"davis: cannot read frame '{path}': {err}") from None


def read_annotation(path: Path) -> tuple[np.ndarray, list[int]]:
    """Read an indexed annotation PNG.

    Returns:
        ((H, W) uint8 label map, flat palette of 768 ints).

    Raises:
        DataError: unreadable file or not an indexed ("P" mode) PNG.
    """
    try:
        with Image.open(path) as img:
            if img.mode != "P":
                raise DataError(f"davis: annotation '{path}' is not an indexed PNG (mode {img.mode})")
            labels = np.asarray(img).copy()
            palette = img.getpalette() or voc_palette()
    except OSError as err:
        raise DataError(f"davis: cannot read annotation '{path}': {err}") from None
    return labels, (palette + [0] * 768)[:768]


def write_annotation(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    """Write a (H, W) label map (values 0..255) as an indexed PNG with ``palette``."""
    if labels.min() < 0 or labels.max() > 255:
        raise ValueError("label values must lie in 0..255 for an indexed PNG")
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def _frames_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTS)


def list_sequences(
    root: str | Path, split: str = "val", resolution: str = "480p", year: str = "2017",
    names: list[str] | None = None,
) -> list[DavisSequence]:
    """The sequences of a DAVIS split.

    Args:
        root: DAVIS root folder.
        split: the ``ImageSets/<year>/<split>.txt`` list to read.
        resolution: subfolder of ``JPEGImages`` and ``Annotations`` (``480p`` or ``Full-Resolution``).
        year: ImageSets subfolder.
        names: evaluate only these sequences (each must be in the split).

    Raises:
        DataError: a missing folder, list, sequence, frame or first-frame annotation, named.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"davis: davis_root '{root}' does not exist")
    listing = root / "ImageSets" / year / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"davis: split list '{listing}' does not exist")
    in_split = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if names:
        unknown = [n for n in names if n not in in_split]
        if unknown:
            raise DataError(f"davis: sequence '{unknown[0]}' is not in '{listing}'")
        in_split = list(names)
    if not in_split:
        raise DataError(f"davis: split list '{listing}' is empty")
    sequences = []
    for name in in_split:
        frame_dir = root / "JPEGImages" / resolution / name
        ann_dir = root / "Annotations" / resolution / name
        if not frame_dir.is_dir():
            raise DataError(f"davis: frame folder '{frame_dir}' does not exist")
        frames = _frames_in(frame_dir)
        if not frames:
            raise DataError(f"davis: frame folder '{frame_dir}' has no images")
        anns = [ann_dir / f"{f.stem}.png" for f in frames]
        if not anns[0].is_file():
            raise DataError(f"davis: first-frame annotation '{anns[0]}' does not exist")
        sequences.append(
            DavisSequence(name, tuple(frames), tuple(a if a.is_file() else None for a in anns))
        )
    return sequences


def write_davis(
    root: str | Path,
    sequences: Iterable[tuple[str, np.ndarray, np.ndarray]],
    split: str = "val",
    resolution: str = "480p",
    year: str = "2017",
    jpeg_quality: int = 95,
) -> list[str]:
    """Write videos with full annotations in the DAVIS layout (what :func:`list_sequences` reads).

    Args:
        root: output root (created).
        sequences: ``(name, frames (T, H, W, 3) uint8, labels (T, H, W) ints in 0..255)``.
        split: name of the ``ImageSets/<year>/<split>.txt`` list written.
        resolution: subfolder name (DAVIS calls its standard one ``480p`` whatever the size).
        jpeg_quality: JPEG quality of the frames.

    Returns:
        The sequence names, in order.
    """
    root = Path(root)
    palette = voc_palette()
    names = []
    for name, frames, labels in sequences:
        if frames.shape[:3] != labels.shape:
            raise ValueError(f"{name}: frames {frames.shape} and labels {labels.shape} disagree")
        frame_dir = root / "JPEGImages" / resolution / name
        frame_dir.mkdir(parents=True, exist_ok=True)
        for t, (frame, lab) in enumerate(zip(frames, labels, strict=True)):
            # 4:4:4 chroma: small frames with thin colour edges lose too much at 4:2:0
            Image.fromarray(frame).save(frame_dir / f"{t:05d}.jpg", quality=jpeg_quality, subsampling=0)
            write_annotation(root / "Annotations" / resolution / name / f"{t:05d}.png", lab, palette)
        names.append(name)
    listing = root / "ImageSets" / year / f"{split}.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{n}\n" for n in names))
    return names

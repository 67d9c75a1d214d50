"""Image decoding that tolerates broken files, and a dataset wrapper that skips them.

Large image collections always contain a few unreadable files (truncated
downloads, zero-byte files, non-images with an image extension). A multi-day run
must not die on one of them, but silently repairing them is wrong too: a truncated
JPEG decoded with PIL's ``LOAD_TRUNCATED_IMAGES`` is a half-grey image with a
valid label. So :func:`load_rgb` fully decodes each file and fails on truncation,
and :class:`RobustDataset` replaces a failing item by the next loadable one and
reports the substitution so training can count it.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from latentmim.data.errors import DataError

logger = logging.getLogger(__name__)

# What PIL and its plugins raise on broken data: OSError (incl. truncated files and
# UnidentifiedImageError), SyntaxError/ValueError/EOFError/struct.error/zlib.error
# from individual decoders, and DecompressionBombError for absurd dimensions.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


# 16-bit (or 32-bit integer) greyscale, as 16-bit PNG and TIFF files open: values 0..65535.
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I")


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file and fully decode it as RGB.

    ``convert`` forces the whole file to be decoded here (PIL is lazy), so corrupt
    or truncated files fail now rather than later inside a transform. Any mode PIL reads
    (grey, palette, RGBA, CMYK, 16-bit grey scaled to 8 bits) becomes RGB. This relies
    on ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` being False (PIL's default), which
    this package never changes.

    Raises:
        OSError and the other :data:`DECODE_ERRORS`: the file cannot be decoded.
    """
    with open(path, "rb") as f:
        img = Image.open(f)
        if img.mode in _WIDE_GREY:
            # PIL's convert("RGB") clips 16-bit grey at 255 (a white image); scale it to 8 bits.
            img.load()
            grey = np.asarray(img, dtype=np.float64) / 257.0
            return Image.fromarray(np.clip(grey + 0.5, 0, 255).astype(np.uint8), mode="L").convert("RGB")
        return img.convert("RGB")


class LoadResult(NamedTuple):
    """One item from :meth:`RobustDataset.load`.

    Attributes:
        image: The decoded image (of item ``index`` if it loaded, else a substitute).
        label: Label of the item that was actually returned.
        ok: False when the requested item failed and a substitute was returned.
        index: Index of the item actually returned.
    """

    image: Any
    label: int
    ok: bool
    index: int


class RobustDataset(Dataset):
    """Wrap a dataset so items that fail to decode are replaced deterministically.

    If item ``i`` raises one of :data:`DECODE_ERRORS`, items ``i+1, i+2, ...``
    (modulo the length) are tried in turn and the first one that loads is returned,
    so the result depends only on ``i`` and the files, never on worker scheduling.

    Args:
        base: Dataset whose ``__getitem__`` returns ``(image, label)`` and raises
            on unreadable items (e.g. one using :func:`load_rgb`).
        name: Dataset name used in log and error messages.
        max_skip: Give up after this many consecutive unreadable items; that many
            in a row means a systemic problem (wrong folder, broken decoder), not
            a few bad files, and scanning the whole dataset would just stall.
    """

    def __init__(self, base: Dataset, name: str = "dataset", max_skip: int = 64) -> None:
        if max_skip < 1:
            raise DataError(f"{name}: max_skip must be >= 1, got {max_skip}")
        self.base = base
        self.name = name
        self.max_skip = max_skip
        # Per process (each DataLoader worker counts its own); for a global count
        # use the ``ok`` flags that travel with the batches.
        self.num_failures = 0

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def load(self, index: int) -> LoadResult:
        """Load item ``index``, or the first loadable item after it.

        Raises:
            IndexError: ``index`` is out of range.
            DataError: ``max_skip`` consecutive items (or all of them) fail to load.
        """
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} items")
        last_error: BaseException | None = None
        for offset in range(min(n, self.max_skip)):
            j = (index + offset) % n
            try:
                image, label = self.base[j]
            except DECODE_ERRORS as exc:
                self.num_failures += 1
                last_error = exc
                logger.warning(
                    "%s: skipping unreadable item %d: %s: %s", self.name, j, type(exc).__name__, exc
                )
                continue
            return LoadResult(image, int(label), offset == 0, j)
        raise DataError(
            f"{self.name}: items {index}.. failed to load {min(n, self.max_skip)} times in a row; "
            f"last error: {type(last_error).__name__}: {last_error}"
        )

    def __getitem__(self, index: int) -> tuple[Any, int]:
        result = self.load(index)
        return result.image, result.label

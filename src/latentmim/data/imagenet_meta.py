"""Class metadata of ImageNet-1k (ILSVRC2012) from the official devkit files."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from latentmim.data.errors import DataError


def read_synsets(meta_path: str | Path) -> dict[str, int]:
    """Map each leaf WordNet id to its official ILSVRC2012 class id.

    ``meta.mat`` holds a struct array ``synsets`` with fields ``ILSVRC2012_ID``,
    ``WNID``, ``words``, ..., ``num_children``; the leaf synsets (no children) are
    the classification classes and carry ids ``1..K`` (K = 1000 for the real file).

    Args:
        meta_path: Path of the devkit's ``meta.mat``.

    Returns:
        ``{wnid: ilsvrc_id}`` for the K leaf classes, ids forming exactly ``1..K``.

    Raises:
        DataError: Missing or unreadable file, or unexpected layout.
    """
    meta_path = Path(meta_path)
    if not meta_path.is_file():
        raise DataError(f"ImageNet meta file '{meta_path}' does not exist")
    try:  # meta.mat is a MATLAB file: SciPy reads it (an optional dependency)
        import scipy.io
    except ImportError:
        raise DataError("ImageNet's devkit meta.mat needs SciPy: pip install 'latentmim[imagenet]'") from None
    try:
        mat = scipy.io.loadmat(str(meta_path), squeeze_me=True)
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"ImageNet meta file '{meta_path}' cannot be read: {exc}") from None
    if "synsets" not in mat:
        raise DataError(f"ImageNet meta file '{meta_path}' has no 'synsets' variable")
    synsets = np.atleast_1d(mat["synsets"])
    names = synsets.dtype.names or ()
    if "WNID" not in names or "ILSVRC2012_ID" not in names:
        raise DataError(
            f"ImageNet meta file '{meta_path}': 'synsets' lacks WNID/ILSVRC2012_ID fields"
        )

    mapping: dict[str, int] = {}
    for row in synsets:
        # Leaves are the classes; older copies without num_children use ids <= 1000.
        ilsvrc_id = int(row["ILSVRC2012_ID"])
        is_leaf = int(row["num_children"]) == 0 if "num_children" in names else ilsvrc_id <= 1000
        if is_leaf:
            mapping[str(row["WNID"])] = ilsvrc_id
    if sorted(mapping.values()) != list(range(1, len(mapping) + 1)):
        raise DataError(
            f"ImageNet meta file '{meta_path}': leaf ids are not exactly 1..{len(mapping)}"
        )
    return mapping


def read_ground_truth(path: str | Path) -> list[int]:
    """Read the validation ground truth: one ILSVRC id per line, in val-file order.

    Returns:
        ``ids[k]`` = ILSVRC2012 id (1-based) of ``ILSVRC2012_val_{k+1:08d}.JPEG``.

    Raises:
        DataError: Missing file or a line that is not a positive integer.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ImageNet validation ground truth '{path}' does not exist")
    ids: list[int] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise DataError(
                f"ImageNet validation ground truth '{path}' line {line_no}: bad id {text!r}"
            )
        ids.append(int(text))
    return ids


def imagenet100_wnids() -> tuple[str, ...]:
    """The 100 WordNet ids of the ImageNet-100 subset of CMC (Tian et al., 2019).

    Returned in the order of the shipped list (``imagenet100.txt``); class labels
    of the subset follow the *sorted* order.
    """
    text = importlib.resources.files("latentmim.data").joinpath("imagenet100.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())

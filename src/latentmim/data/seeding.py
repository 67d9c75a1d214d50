"""Stable seed derivation and temporarily seeded global RNGs.

Data augmentation in torchvision (and timm's auto-augment) draws from the global
RNGs of torch, ``random`` and numpy. To make the augmentation of a sample a pure
function of (seed, epoch, index), those RNGs are re-seeded around each call and
restored afterwards, so nothing else in the process sees a changed RNG stream.
A transform known to draw from torch alone is wrapped in the cheaper
:func:`seeded_torch_rng` (saving and restoring numpy's state costs about 0.1 ms, a
fifth of a small image's whole augmentation).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from latentmim.data.errors import DataError

# Domain tags keep seeds for different purposes independent even for equal inputs.
AUGMENT_STREAM = 0x61756720  # b"aug "
PERMUTATION_STREAM = 0x7065726D  # b"perm"


def derive_seed(*parts: int) -> int:
    """Hash non-negative integers into a 63-bit seed.

    Uses numpy's ``SeedSequence`` (a documented, platform-independent hash), not
    Python's ``hash``, so the value is identical in every process and run.

    Args:
        *parts: Non-negative integers, e.g. ``(AUGMENT_STREAM, seed, epoch, index)``.

    Returns:
        Seed in ``[0, 2**63)``, valid for ``torch.Generator.manual_seed``.
    """
    if any(int(p) < 0 for p in parts):
        raise DataError(f"seed parts must be non-negative, got {parts}")
    hi, lo = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return ((int(hi) << 32) | int(lo)) & ((1 << 63) - 1)


@contextmanager
def seeded_torch_rng(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG inside the block only; ``random`` and numpy are not touched.

    Equivalent to :func:`seeded_global_rngs` for a block that draws from torch's global
    RNG alone (torchvision's v1 transforms), at a fraction of the cost.

    Args:
        seed: Seed in ``[0, 2**63)``, e.g. from :func:`derive_seed`.
    """
    generator = torch.default_generator
    state = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(state)


@contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG, ``random`` and numpy's global RNG inside the block only.

    Only the CPU generator of torch is touched (not CUDA), so calling this in the
    main process (``num_workers=0``) leaves GPU randomness alone.

    Args:
        seed: Seed in ``[0, 2**63)``, e.g. from :func:`derive_seed`.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    with seeded_torch_rng(seed):
        random.seed(seed)
        np.random.seed(seed % (1 << 32))
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def seeded_subset(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    """A fixed random subset of at most ``limit`` items (the whole set when it is smaller).

    The same ``seed`` gives the same items in every process and at every call, so the training
    monitor's k-NN bank and an offline evaluation with that seed score the same images.
    """
    if limit is None or limit >= len(ds):  # type: ignore[arg-type]
        return ds
    g = torch.Generator().manual_seed(seed)
    return Subset(ds, torch.randperm(len(ds), generator=g)[:limit].tolist())  # type: ignore[arg-type]

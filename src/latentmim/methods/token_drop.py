"""PCAE's progressive token dropping: which tokens survive, and after which blocks.

A drop stage keeps ``floor(N * keep)`` of the N current tokens of every image. The ranking rule
(PCAE, METHOD.md §2) keeps the tokens *least* cosine-similar to the image's mean token, i.e. the
most distinctive ones; the "RD" ablation keeps a random subset instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Drop cases of the PCAE ablation (slide table "drop case" 1-5), for ``s`` stages in a
# ``depth``-block encoder. Cases 1-4 are the rules of the authors' public code (their
# ``drop_case`` 0-3); case 5 is our *(choice)*: the paper's most expensive, least accurate case,
# read as a single drop after the last block keeping keep**s (all blocks see every token).
DROP_CASE_RULES = {
    1: "evenly spaced from block 0 (ViT-B: after blocks 0, 4, 8) - the default",
    2: "at the end of each third (ViT-B: 3, 7, 11)",
    3: "evenly spaced from first to last block (ViT-B: 0, 5, 11)",
    4: "after the first s blocks (ViT-B: 0, 1, 2)",
    5: "once, after the last block, keeping keep**s",
}


def drop_schedule(
    depth: int, keep: float, case: int = 1, stages: int = 3, blocks: list[int] | None = None
) -> list[tuple[int, float]]:
    """The (block index, keep fraction) pairs of one PCAE configuration.

    Args:
        depth: blocks of the target encoder.
        keep: fraction each stage keeps.
        case: drop case 1-5 (see :data:`DROP_CASE_RULES`); ignored when ``blocks`` is given.
        stages: number of drop stages of the case.
        blocks: explicit 0-based block indices; drops happen after these blocks.

    Returns:
        Sorted list of (block, keep): drop after block ``block`` keeping fraction ``keep``.
    """
    if blocks is not None:
        idx = sorted(blocks)
    elif case == 1:
        idx = [depth // stages * i for i in range(stages)]
    elif case == 2:
        idx = [depth // stages * (i + 1) - 1 for i in range(stages)]
    elif case == 3:
        idx = torch.linspace(0, depth - 1, stages).long().tolist()
    elif case == 4:
        idx = list(range(stages))
    elif case == 5:
        return [(depth - 1, keep**stages)]
    else:
        raise ValueError(f"unknown drop case {case}; choose one of {sorted(DROP_CASE_RULES)}")
    return [(b, keep) for b in idx]


def num_kept(n: int, keep: float) -> int:
    """floor(n * keep), at least 1 (a stage never drops every token)."""
    return max(1, int(n * keep + 1e-9))


def rank_keep(x: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` tokens least cosine-similar to their image's mean token.

    Args:
        x: (B, N, D) tokens.
        k: tokens to keep.

    Returns:
        (B, k) int64 positions into the N tokens, most distinctive first.
    """
    u = F.normalize(x.float(), dim=-1)  # (B, N, D)
    mean = u.mean(dim=1, keepdim=True)  # (B, 1, D): mean of the unit tokens, as the authors
    score = F.cosine_similarity(u, mean, dim=-1)  # (B, N)
    return score.argsort(dim=1, stable=True)[:, :k]


def random_keep(batch: int, n: int, k: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """(B, k) positions of a uniformly random subset of ``k`` of ``n`` tokens per image."""
    noise = torch.rand(batch, n, generator=generator)  # drawn on CPU: reproducible on any device
    return noise.argsort(dim=1)[:, :k].to(device)


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """x (B, N, D), idx (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))

"""PCAE's progressive token dropping: which tokens survive, and after which blocks.

A drop stage keeps ``floor(N * keep)`` of the N current tokens of every image. The ranking rule
(PCAE, docs/method.md#pcae) keeps the tokens *least* cosine-similar to the image's mean token,
i.e. the most distinctive ones; the "RD" ablation keeps a random subset instead.

Pre-training drops inside the target encoder (:func:`drop_schedule`); fine-tuning drops inside
the classifier, in three stages too (:func:`finetune_drop_blocks`, :func:`finetune_token_counts`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Drop cases of the PCAE ablation (paper table "drop case" 1-5), for ``s`` stages in a
# ``depth``-block encoder. Cases 1-4 are the rules of the authors' public code (their
# ``drop_case`` 0-3). Case 5 is not in that code and the paper names no rule for it: ours is a
# *reconstruction* from its cost. The paper's GPU days of cases 1-4 are proportional to their
# training FLOPs (methods/pcae_cost.py; within 0.1 GPU day, with a 2 x 512 or 8 x 512 decoder).
# At that rate a target encoder that keeps every hidden token through all blocks and picks the
# keep**s survivors after the last one costs 4.7 / 4.5 GPU days (paper: 4.8); the other readings
# cost: drops after the last s blocks 4.5 / 4.3, no compression (the decoder predicts all hidden
# patches) 5.2 / 6.0, a target encoder over the whole image 5.5 / 5.2.
DROP_CASE_RULES = {
    1: "evenly spaced from block 0 (ViT-B: after blocks 0, 4, 8) - the default",
    2: "at the end of each third (ViT-B: 3, 7, 11)",
    3: "evenly spaced from first to last block (ViT-B: 0, 5, 11)",
    4: "after the first s blocks (ViT-B: 0, 1, 2)",
    5: "once, after the last block, keeping keep**s (a reconstruction)",
}

# Fine-tuning stages: the paper's framework figure (panel b) puts the same three-stage token
# reduction into the classifier; the authors' public code has no fine-tuning drop. The blocks
# and the per-stage count are those that reproduce the paper's Table 5 (ViT-B/16 GMACs per
# ratio, within 2%): after the 3rd, 6th and 9th of 12 blocks, each stage dropping ``ratio`` of
# the current patch tokens, ranked as in pre-training. The pre-training blocks (0, 4, 8)
# land 4-16% under the table, a single drop after block 4 (a third of the depth) 8-41% over.
FINETUNE_STAGES = 3


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


def finetune_drop_blocks(depth: int, stages: int = FINETUNE_STAGES) -> list[int]:
    """Blocks after which fine-tuning drops tokens: the ends of the first ``stages`` of
    ``stages + 1`` equal parts of the encoder (ViT-B, 12 blocks: after blocks 2, 5, 8).

    Args:
        depth: blocks of the classifier's encoder.
        stages: drop stages (fewer when the encoder is too shallow to hold them apart).

    Returns:
        Sorted distinct 0-based block indices.
    """
    return sorted({max(0, depth * (i + 1) // (stages + 1) - 1) for i in range(stages)})


def finetune_kept(n: int, ratio: float) -> int:
    """Patch tokens left when a fine-tuning stage drops ``ratio`` of ``n``: n - floor(n * ratio),
    at least 1."""
    return max(1, n - int(n * ratio + 1e-9))


def finetune_token_counts(num_patches: int, ratio: float, stages: int = FINETUNE_STAGES) -> list[int]:
    """Patch tokens after each fine-tuning stage (ViT-B/16 at ratio 0.4: 196 -> 118 -> 71 -> 43).

    Args:
        num_patches: patch tokens entering the encoder (cls not counted).
        ratio: fraction of the current patch tokens each stage drops, in [0, 1).
        stages: number of stages.

    Returns:
        ``stages`` counts, after stage 1, 2, ...
    """
    counts, n = [], num_patches
    for _ in range(stages):
        n = finetune_kept(n, ratio) if ratio > 0 else n
        counts.append(n)
    return counts


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

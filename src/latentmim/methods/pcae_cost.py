"""Analytic compute of PCAE, MAE and token-drop fine-tuning (docs/method.md#pcae).

Counts the multiply-accumulates (MACs) of the matrix products a ViT spends nearly all its time
in: patch embedding, the four linear maps of each block, the two attention products, the
decoder's input and output maps. Norms, activations, softmax, losses and the EMA update are left
out (under 1% at ViT-B). ``FLOPs = 2 * MACs``; a trained part costs its forward three times
(forward + backward), the no-grad target encoder once. The counts follow the library's own
token bookkeeping (:mod:`latentmim.methods.token_drop`), and match
``torch.utils.flop_counter.FlopCounterMode`` on the real modules (tests/methods/test_pcae_costs.py).

Where PCAE saves over MAE: its decoder runs on the visible tokens plus the ~10% surviving
targets instead of every patch. Its target encoder (forward only, shrinking tokens) is a cost
MAE does not pay at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from latentmim.methods.token_drop import finetune_drop_blocks, finetune_kept, num_kept

TRAIN_PASSES = 3  # forward + backward (about twice the forward) of a part that gets gradients


@dataclass(frozen=True)
class ViTShape:
    """The sizes of a ViT encoder that its compute depends on.

    Attributes:
        dim: width D.
        depth: blocks.
        num_patches: patch tokens of an image (196 for a 14 x 14 grid).
        patch_dim: values per patch, P*P*C (768 for 16 x 16 RGB patches).
        mlp_ratio: hidden width of the MLP over D.
    """

    dim: int = 768
    depth: int = 12
    num_patches: int = 196
    patch_dim: int = 768
    mlp_ratio: float = 4.0


VIT_B16 = ViTShape()


def block_macs(tokens: int, dim: int, mlp_ratio: float = 4.0) -> int:
    """MACs of one pre-norm transformer block on ``tokens`` tokens of width ``dim``.

    Linear maps: qkv (3), output projection (1) and the MLP (2 * mlp_ratio), each
    tokens x dim x dim; attention: scores q k^T and the weighted sum of v, tokens^2 x dim each.
    """
    return int((4 + 2 * mlp_ratio) * tokens * dim * dim) + 2 * tokens * tokens * dim


def blocks_macs(tokens_per_block: Sequence[int], dim: int, mlp_ratio: float = 4.0) -> int:
    """Sum of :func:`block_macs` over blocks running on the given token counts."""
    return sum(block_macs(n, dim, mlp_ratio) for n in tokens_per_block)


def finetune_tokens(shape: ViTShape, ratio: float, blocks: Sequence[int] | None = None,
                    num_prefix: int = 1) -> list[int]:
    """Tokens (prefix included) each block of a token-drop classifier runs on.

    Args:
        shape: the encoder.
        ratio: fraction of the current patch tokens each stage drops.
        blocks: stages' blocks (drop after each); None = :func:`finetune_drop_blocks`.
        num_prefix: cls/register tokens, never dropped.

    Returns:
        ``shape.depth`` counts.
    """
    after = set(finetune_drop_blocks(shape.depth) if blocks is None else blocks)
    n, out = shape.num_patches, []
    for i in range(shape.depth):
        out.append(num_prefix + n)
        if i in after and ratio > 0:
            n = finetune_kept(n, ratio)
    return out


def finetune_macs(shape: ViTShape, ratio: float, blocks: Sequence[int] | None = None) -> int:
    """Inference MACs of one image through a token-drop classifier (patch embedding + blocks).

    The head (D x classes) is left out: 0.8 M MACs for ImageNet's 1000 classes.
    """
    embed = shape.num_patches * shape.patch_dim * shape.dim
    return embed + blocks_macs(finetune_tokens(shape, ratio, blocks), shape.dim, shape.mlp_ratio)


def target_tokens(num_hidden: int, depth: int,
                  schedule: Sequence[tuple[int, float]]) -> tuple[list[int], int]:
    """Tokens each block of PCAE's target encoder runs on, as :meth:`PCAE.compressed_targets` drops.

    Args:
        num_hidden: hidden patches of an image (the target encoder has no cls token).
        depth: blocks.
        schedule: (block, keep) stages (:func:`~latentmim.methods.token_drop.drop_schedule`).

    Returns:
        (per-block counts, survivors after the last stage).
    """
    keep = dict(schedule)
    n, out = num_hidden, []
    for i in range(depth):
        out.append(n)
        if i in keep:
            n = num_kept(n, keep[i])
    return out, n


@dataclass(frozen=True)
class StepCost:
    """Training FLOPs per image of one pre-training step, by part.

    Attributes:
        encoder: online encoder on the visible patches (+ cls), forward and backward.
        target: target encoder, forward only (0 for MAE).
        decoder: decoder, forward and backward.
        num_predicted: tokens the decoder predicts (PCAE: survivors; MAE: every hidden patch).
    """

    encoder: int
    target: int
    decoder: int
    num_predicted: int

    @property
    def total(self) -> int:
        return self.encoder + self.target + self.decoder


def _online_macs(shape: ViTShape, num_vis: int) -> int:
    """Online encoder: patch embedding of the visible patches, blocks on them plus cls."""
    embed = num_vis * shape.patch_dim * shape.dim
    return embed + blocks_macs([1 + num_vis] * shape.depth, shape.dim, shape.mlp_ratio)


def _decoder_macs(shape: ViTShape, num_vis: int, num_queries: int, out_dim: int, dec_dim: int,
                  dec_depth: int) -> int:
    """Self-attention decoder over [cls, visible, queries]: input map, blocks, output map on the
    queries only."""
    seq = 1 + num_vis + num_queries
    return ((1 + num_vis) * shape.dim * dec_dim + dec_depth * block_macs(seq, dec_dim, shape.mlp_ratio)
            + num_queries * dec_dim * out_dim)


def pcae_step_flops(shape: ViTShape, schedule: Sequence[tuple[int, float]], num_vis: int = 49,
                    dec_dim: int = 512, dec_depth: int = 8) -> StepCost:
    """FLOPs per image of a PCAE training step (docs/method.md#pcae).

    Args:
        shape: the encoder (online and target alike).
        schedule: the target encoder's drop stages.
        num_vis: visible patches (the rest are hidden and go to the target encoder).
        dec_dim, dec_depth: self-attention decoder size; it sees the visible tokens and one query
            per survivor, and predicts D-wide latents.
    """
    per_block, survivors = target_tokens(shape.num_patches - num_vis, shape.depth, schedule)
    hidden = shape.num_patches - num_vis
    target = hidden * shape.patch_dim * shape.dim + blocks_macs(per_block, shape.dim, shape.mlp_ratio)
    decoder = _decoder_macs(shape, num_vis, survivors, shape.dim, dec_dim, dec_depth)
    return StepCost(2 * TRAIN_PASSES * _online_macs(shape, num_vis), 2 * target,
                    2 * TRAIN_PASSES * decoder, survivors)


def mae_step_flops(shape: ViTShape, num_vis: int = 49, dec_dim: int = 512, dec_depth: int = 8) -> StepCost:
    """FLOPs per image of an MAE training step: its decoder sees every patch and predicts the
    pixels (P*P*C values) of all hidden ones."""
    hidden = shape.num_patches - num_vis
    decoder = _decoder_macs(shape, num_vis, hidden, shape.patch_dim, dec_dim, dec_depth)
    return StepCost(2 * TRAIN_PASSES * _online_macs(shape, num_vis), 0, 2 * TRAIN_PASSES * decoder, hidden)

"""Reference numbers of I-JEPA from the authors' code, for tests/methods/test_ijepa_reference.py.

Builds one small deterministic case (:func:`build_case`: seeded weights for every parameter and
position table, the target encoder different from the context encoder, a non-zero mask token,
images and multi-block views, all in float64), copies our weights into the authors'
``VisionTransformer`` (context and target encoders) and ``VisionTransformerPredictor``
(github.com/facebookresearch/ijepa, imported at run time from ``--authors-dir``; none of their
code is in this repository), runs their training forward as ``src/train.py`` composes it
(``forward_target``: target encoder on the whole image, ``F.layer_norm`` over the features,
``apply_masks`` with the target masks, ``repeat_interleave_batch``; ``forward_context``: encoder
on the context mask, predictor; ``loss_fn``: ``F.smooth_l1_loss``, whose all-reduce is the
identity in one process), and prints the numbers the test commits, with the largest difference to
our implementation on the same inputs.

Their ViT is built as ours: pre-norm blocks, qkv bias, LayerNorm eps 1e-6, MLP ratio 4, no
dropout or drop path; it has no cls token (ours runs with ``cls=False``). Their position tables
are replaced by ours (randomised here, so a wrong id lookup shows); the tool also checks that
their default sin-cos tables equal ours at spacing 1. It also checks that their block-size draw
(``MaskCollator._sample_block_size``) equals :meth:`MultiBlockMasker.block_size` for the same
generator state, and compares mask statistics of their collator and ours.

    git clone https://github.com/facebookresearch/ijepa /tmp/ijepa_authors
    python tools/reference_ijepa.py --authors-dir /tmp/ijepa_authors
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentmim.masking.multiblock import BlockViews, MultiBlockMasker
from latentmim.masking.patchify import patchify
from latentmim.methods.ijepa import IJEPA
from latentmim.models.pos_embed import sincos_2d
from latentmim.models.predictor import JEPAPredictor
from latentmim.models.vit import ViTEncoder

# The case: an 8x8 grid of 4-px RGB patches (32-px images), a 2-block ViT of width 32 with 4
# heads, a 2-block predictor of width 16, 4 target blocks per image, batch 3.
GRID, PATCH, CHANS, DIM, DEPTH, HEADS = 8, 4, 3, 32, 2, 4
PRED_DIM, PRED_DEPTH, BATCH = 16, 2, 3


@torch.no_grad()
def reinit_(module: nn.Module, seed: int) -> None:
    """Give every parameter seeded, non-trivial random values (no zeros, no ones, no symmetry).

    Weights ~ N(0, 1/fan_in); biases and norm shifts ~ N(0, 0.2^2); norm scales ~ 1 + N(0, 0.2^2);
    tokens (mask, cls) and position tables ~ N(0, 1), the scale of a patch embedding.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if name.endswith("bias"):
            value = 0.2 * noise
        elif "norm" in name and name.endswith("weight"):
            value = 1.0 + 0.2 * noise
        elif name.endswith("weight"):
            value = noise / math.sqrt(p[0].numel())  # fan-in: every dim but the output one
        else:  # mask_token, cls_token, pos_embed
            value = noise
        p.copy_(value)


def build_case(seed: int = 0) -> tuple[IJEPA, Tensor, BlockViews]:
    """Our model with seeded weights, a batch of images and its views, all in float64.

    The context encoder, the target encoder and the predictor get different seeds; the
    predictor's fixed position table is randomised too.

    Returns:
        (model in eval mode, imgs (B, C, S, S), views with (B, Kc) and (B, M, Kt) ids).
    """
    encoder = ViTEncoder(grid_size=GRID, patch_size=PATCH, in_chans=CHANS, embed_dim=DIM, depth=DEPTH,
                         num_heads=HEADS)
    predictor = JEPAPredictor(DIM, GRID, pred_dim=PRED_DIM, depth=PRED_DEPTH, num_heads=HEADS)
    masker = MultiBlockMasker(GRID, min_keep=4, reach_edges=True)
    model = IJEPA(encoder, predictor, masker, patch_gap=0, seed=seed)
    reinit_(model.encoder, seed + 1)
    reinit_(model.target_encoder, seed + 2)
    reinit_(model.predictor, seed + 3)
    g = torch.Generator().manual_seed(seed + 4)
    model.predictor.pos_embed.copy_(torch.randn(model.predictor.pos_embed.shape, generator=g))
    model = model.double().eval()
    imgs = torch.randn(BATCH, CHANS, GRID * PATCH, GRID * PATCH, generator=g, dtype=torch.float64)
    views = model.sample_views(BATCH, g)
    return model, imgs, views


@torch.no_grad()
def ours(model: IJEPA, imgs: Tensor, views: BlockViews) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Our loss, predictions (B, M, Kt, D), targets (B, M, Kt, D) and context tokens (B, Kc, D)."""
    loss, _ = model(imgs, views)
    patches = patchify(imgs, PATCH)  # (B, N, P*P*C) in id order, gap 0
    ctx_patches = patches.gather(1, views.ctx_ids[..., None].expand(-1, -1, patches.shape[-1]))
    ctx = model.encode(model.encoder, ctx_patches, views.ctx_ids)
    pred = model.predictor(ctx, views.ctx_ids, views.trg_ids)
    target = model.targets(patches, views.trg_ids)
    return loss, pred, target, ctx


def summary(loss: Tensor, pred: Tensor, target: Tensor, ctx: Tensor) -> dict[str, float | list[float]]:
    """The committed numbers: the loss and a few sums and slices of the outputs."""
    return {
        "loss": loss.item(),
        "pred_sum": pred.sum().item(),
        "pred_abs_sum": pred.abs().sum().item(),
        "pred_slice": pred[1, 2, 3, :4].tolist(),  # image 1, target block 2, its 4th patch
        "target_abs_sum": target.abs().sum().item(),
        "target_slice": target[2, 1, 0, :4].tolist(),  # image 2, target block 1, its 1st patch
        "ctx_abs_sum": ctx.abs().sum().item(),
        "ctx_slice": ctx[0, -1, :4].tolist(),  # image 0, its last context patch
    }


def _import_authors(authors_dir: Path):
    """Their ``src.models.vision_transformer``, ``src.masks.multiblock``, ``src.masks.utils`` and
    ``src.utils.tensors`` modules (torch and numpy only)."""
    sys.path.insert(0, str(authors_dir))
    names = ("src.models.vision_transformer", "src.masks.multiblock", "src.masks.utils", "src.utils.tensors")
    return [importlib.import_module(n) for n in names]


def authors_models(vit, model: IJEPA) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Their encoder, target encoder and predictor holding our weights and position tables."""
    norm = partial(nn.LayerNorm, eps=1e-6)

    def encoder(ours_enc: ViTEncoder) -> nn.Module:
        theirs = vit.VisionTransformer(img_size=[GRID * PATCH], patch_size=PATCH, in_chans=CHANS, embed_dim=DIM,
                                       depth=DEPTH, num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True,
                                       norm_layer=norm)
        src = ours_enc.state_dict()
        dst = {k: v for k, v in src.items() if k not in ("cls_token", "pos_embed")}
        dst["pos_embed"] = src["pos_embed"][:, 1:]  # our row 0 is the cls slot
        theirs.load_state_dict(dst, strict=True)
        return theirs.double().eval()

    pred = vit.vit_predictor(num_patches=GRID * GRID, embed_dim=DIM, predictor_embed_dim=PRED_DIM,
                             depth=PRED_DEPTH, num_heads=HEADS)
    dst = dict(model.predictor.state_dict())
    dst["predictor_pos_embed"] = model.predictor.pos_embed[None]
    pred.load_state_dict(dst, strict=True)
    return encoder(model.encoder), encoder(model.target_encoder), pred.double().eval()


@torch.no_grad()
def authors_forward(modules, enc, target_enc, pred, imgs: Tensor, views: BlockViews):
    """Their training forward (``src/train.py``) on our masks; returns (loss, z, h) with z and h
    reordered from their (M*B, Kt, D) block-major stacking to our (B, M, Kt, D)."""
    _, _, masks, tensors = modules
    masks_enc = [views.ctx_ids]
    masks_pred = [views.trg_ids[:, j] for j in range(views.num_targets)]
    # forward_target
    h = target_enc(imgs)
    h = F.layer_norm(h, (h.size(-1),))
    b = len(h)
    h = masks.apply_masks(h, masks_pred)
    h = tensors.repeat_interleave_batch(h, b, repeat=len(masks_enc))
    # forward_context
    z = enc(imgs, masks_enc)
    ctx = z
    z = pred(z, masks_enc, masks_pred)
    # loss_fn
    loss = F.smooth_l1_loss(z, h)
    m, kt = views.num_targets, views.trg_ids.shape[-1]
    to_ours = lambda x: x.view(m, b, kt, -1).transpose(0, 1)  # noqa: E731
    return loss, to_ours(z), to_ours(h), ctx


def check_tables(vit) -> None:
    """Their fixed sin-cos tables equal ours (spacing 1, no cls row) in float32."""
    for dim, grid in ((DIM, GRID), (PRED_DIM, GRID), (768, 14), (384, 16)):
        theirs = torch.from_numpy(vit.get_2d_sincos_pos_embed(dim, grid, cls_token=False)).float()
        assert torch.equal(theirs, sincos_2d(dim, grid, cls_token=False)), (dim, grid)


def check_block_sizes(multiblock) -> int:
    """Their ``_sample_block_size`` and our ``block_size`` give the same (h, w) from the same
    generator state (authors' bounds: ``reach_edges=False``); returns the draws compared."""
    cases = 0
    for grid in (4, 8, 14, 16):
        theirs = multiblock.MaskCollator(input_size=grid * 16, patch_size=16)
        ours_masker = MultiBlockMasker(grid, min_keep=0)
        for seed in range(500):
            for scale, aspect in (((0.15, 0.2), (0.75, 1.5)), ((0.85, 1.0), (1.0, 1.0))):
                t = theirs._sample_block_size(torch.Generator().manual_seed(seed), scale, aspect)
                o = ours_masker.block_size(torch.Generator().manual_seed(seed), scale, aspect)
                assert t == o, (grid, seed, scale, t, o)
                cases += 1
    return cases


def compare_mask_statistics(multiblock, grid: int = 14, batch: int = 16, batches: int = 300) -> None:
    """Print how often each patch is context (after the batch cut) and target, theirs vs ours."""
    torch.manual_seed(0)  # their positions come from the global RNG
    theirs = multiblock.MaskCollator(input_size=grid * 16, patch_size=16, enc_mask_scale=(0.85, 1.0),
                                     pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4,
                                     min_keep=10, allow_overlap=False)
    ours_masker = MultiBlockMasker(grid)
    g = torch.Generator().manual_seed(0)
    freq = {k: torch.zeros(2, grid * grid) for k in ("theirs", "ours")}
    keep = {"theirs": 0.0, "ours": 0.0}
    for _ in range(batches):
        _, enc, pred = theirs([torch.zeros(1)] * batch)
        v = ours_masker.sample(batch, g)
        for key, ctx_ids, trg_ids in (("theirs", enc[0], torch.stack(pred, dim=1)), ("ours", v.ctx_ids, v.trg_ids)):
            freq[key][0] += torch.zeros(batch, grid * grid).scatter_(1, ctx_ids, 1.0).sum(0)
            freq[key][1] += torch.zeros(batch, grid * grid).scatter_(1, trg_ids.flatten(1), 1.0).sum(0)
            keep[key] += ctx_ids.shape[1] / batches
    n = batch * batches
    diff = (freq["theirs"] - freq["ours"]).abs().max(dim=1).values / n
    their_maps = freq["theirs"].view(2, grid, grid)
    edge = bool(their_maps[:, -1].sum() + their_maps[:, :, -1].sum())
    print(f"{grid}x{grid} grid, {batches} batches of {batch}: context patches kept per image theirs "
          f"{keep['theirs']:.1f} ours {keep['ours']:.1f}; largest per-patch frequency difference: context "
          f"{diff[0]:.3f}, target {diff[1]:.3f}; last row or column ever in their blocks: {edge}")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-dir", type=Path, required=True, help="checkout of github.com/facebookresearch/ijepa")
    args = parser.parse_args()
    modules = _import_authors(args.authors_dir.resolve())
    vit, multiblock = modules[0], modules[1]
    check_tables(vit)
    print("their sin-cos position tables equal ours (spacing 1, no cls row)")
    print(f"block sizes agree with the authors' _sample_block_size on {check_block_sizes(multiblock)} draws")
    compare_mask_statistics(multiblock)

    model, imgs, views = build_case()
    enc, target_enc, pred = authors_models(vit, model)
    loss, z, h, ctx = authors_forward(modules, enc, target_enc, pred, imgs, views)
    theirs = summary(loss, z, h, ctx)

    our_loss, our_pred, our_target, our_ctx = ours(model, imgs, views)
    print(f"max |ours - theirs|: loss {abs(our_loss - loss).item():.3g}, predictions "
          f"{(our_pred - z).abs().max().item():.3g}, targets {(our_target - h).abs().max().item():.3g}, "
          f"context tokens {(our_ctx - ctx).abs().max().item():.3g}")
    print("REFERENCE = {")
    for key, value in theirs.items():
        text = f"{value:.10g}" if isinstance(value, float) else "[" + ", ".join(f"{v:.10g}" for v in value) + "]"
        print(f'    "{key}": {text},')
    print("}")


if __name__ == "__main__":
    main()

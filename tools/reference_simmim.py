"""Reference numbers of SimMIM from the authors' code, for tests/methods/test_simmim_reference.py.

Builds one small deterministic case (:func:`build_case`: seeded weights, images and masks in
float64), copies our weights into the authors' ``SimMIM`` + ``VisionTransformerForSimMIM``
(github.com/microsoft/SimMIM, imported at run time from ``--authors-dir``; none of their code is
in this repository), runs their forward, and prints the numbers the test commits, with the largest
difference to our implementation on the same inputs.

Their ViT is configured as the plain ViT of this library: ``use_abs_pos_emb=True``,
``use_rel_pos_bias=False``, ``use_shared_rel_pos_bias=False``, ``init_values=None`` (no layer
scale), ``use_mean_pooling=False`` (final LayerNorm, eps 1e-6), ``qkv_bias=True``, no dropout or
drop path; their decoder is built with ``encoder_stride`` = our patch size. Their attention has
no key bias; ours has one, which changes no attention output (it adds the same q.b_k to every
logit of a query, and softmax ignores that), so it is left random.

    git clone https://github.com/microsoft/SimMIM /tmp/simmim_authors
    python tools/reference_simmim.py --authors-dir /tmp/simmim_authors
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from latentmim.masking.patchify import patchify
from latentmim.masking.simmim_masks import SimMIMMaskGenerator, SimMIMViews, num_masked_cells
from latentmim.methods.simmim import SimMIM
from latentmim.models.vit import ViTEncoder

# The case: a 6x6 grid of 4-px RGB patches (24-px images), 3x3 mask cells of 2x2 tokens, 6 of 9
# cells hidden (ceil(9 * 0.6)), a 2-block ViT of width 32.
GRID, PATCH, CHANS, DIM, DEPTH, HEADS = 6, 4, 3, 32, 2, 4
MASK_PATCH, MASK_RATIO, BATCH = 2, 0.6, 3


@torch.no_grad()
def reinit_(model: nn.Module, seed: int) -> None:
    """Give every parameter seeded, non-trivial random values (no zeros, no ones, no symmetry).

    Weights ~ N(0, 1/fan_in); biases and norm shifts ~ N(0, 0.2^2); norm scales ~ 1 + N(0, 0.2^2);
    the tokens (mask, cls) and the position table ~ N(0, 1), the scale of a patch embedding.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if name.endswith("bias"):
            value = 0.2 * noise
        elif "norm" in name and name.endswith("weight"):
            value = 1.0 + 0.2 * noise
        elif name.endswith("weight"):
            value = noise / math.sqrt(p[0].numel())  # fan-in: every dim but the output one
        else:  # mask_token, encoder.cls_token, encoder.pos_embed
            value = noise
        p.copy_(value)


def build_case(seed: int = 0) -> tuple[SimMIM, Tensor, SimMIMViews]:
    """Our model with seeded weights, a batch of images and its views, all in float64.

    Returns:
        (model in eval mode, imgs (B, C, S, S), views with ``mask`` (B, N)).
    """
    encoder = ViTEncoder(grid_size=GRID, patch_size=PATCH, in_chans=CHANS, embed_dim=DIM, depth=DEPTH,
                         num_heads=HEADS, freeze_pe=False)
    model = SimMIM(encoder, MASK_PATCH, MASK_RATIO, patch_gap=0, seed=seed)
    reinit_(model, seed + 1)
    model = model.double().eval()
    g = torch.Generator().manual_seed(seed + 2)
    imgs = torch.randn(BATCH, CHANS, GRID * PATCH, GRID * PATCH, generator=g, dtype=torch.float64)
    views = model.sample_views(BATCH, g)
    return model, imgs, views


def tokens_to_image(x: Tensor, grid: int, patch: int, chans: int) -> Tensor:
    """(B, N, P*P*C) per-token pixels in (row, col, channel) order -> (B, C, G*P, G*P)."""
    b = x.shape[0]
    x = x.reshape(b, grid, grid, patch, patch, chans)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, chans, grid * patch, grid * patch)


@torch.no_grad()
def ours(model: SimMIM, imgs: Tensor, views: SimMIMViews) -> tuple[Tensor, Tensor, Tensor]:
    """Our loss, encoder patch tokens as an image of features (B, D, G, G), reconstruction (B, C, S, S)."""
    loss, _ = model(imgs, views)
    patches = patchify(imgs, PATCH)  # (B, N, P*P*C), gap 0
    tokens = model.encoder.forward_masked(patches, views.mask, model.mask_token)[:, 1:]  # (B, N, D)
    feats = tokens.transpose(1, 2).reshape(imgs.shape[0], -1, GRID, GRID)
    rec = tokens_to_image(model.head(tokens), GRID, PATCH, CHANS)
    return loss, feats, rec


def summary(loss: Tensor, feats: Tensor, rec: Tensor) -> dict[str, float | list[float]]:
    """The committed numbers: the loss and a few sums and slices of the outputs."""
    return {
        "loss": loss.item(),
        "feat_sum": feats.sum().item(),
        "feat_abs_sum": feats.abs().sum().item(),
        "feat_slice": feats[1, :4, 2, 3].tolist(),  # image 1, channels 0-3, token (2, 3)
        "rec_sum": rec.sum().item(),
        "rec_abs_sum": rec.abs().sum().item(),
        "rec_slice": rec[1, 2, 5, :8].tolist(),  # image 1, channel 2, pixel row 5, two tokens wide
        "rec_pixel": rec[2, :, 13, 6].tolist(),  # image 2, every channel of one pixel
    }


def _import_authors(authors_dir: Path):
    """Their ``models.simmim`` module and their ``data/data_simmim.py`` (loaded alone: the data
    package's ``__init__`` pulls in their fine-tuning loaders, which need an old timm)."""
    sys.path.insert(0, str(authors_dir))
    models = importlib.import_module("models.simmim")
    spec = importlib.util.spec_from_file_location("authors_data_simmim", authors_dir / "data" / "data_simmim.py")
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    return models, data


def authors_model(models, ours_model: SimMIM) -> nn.Module:
    """Their SimMIM with a plain ViT, holding our weights."""
    encoder = models.VisionTransformerForSimMIM(
        img_size=GRID * PATCH, patch_size=PATCH, in_chans=CHANS, num_classes=0, embed_dim=DIM,
        depth=DEPTH, num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, drop_path_rate=0.0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), init_values=None, use_abs_pos_emb=True,
        use_rel_pos_bias=False, use_shared_rel_pos_bias=False, use_mean_pooling=False,
    )
    model = models.SimMIM(encoder=encoder, encoder_stride=PATCH).double().eval()
    src = ours_model.state_dict()
    dst = {}
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                "norm.weight", "norm.bias"):
        dst[f"encoder.{key}"] = src[f"encoder.{key}"]
    dst["encoder.mask_token"] = src["mask_token"]
    for i in range(DEPTH):
        pre = f"encoder.blocks.{i}."
        for key in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.qkv.weight",
                    "attn.proj.weight", "attn.proj.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                    "mlp.fc2.weight", "mlp.fc2.bias"):
            dst[pre + key] = src[pre + key]
        q_bias, _k_bias, v_bias = src[pre + "attn.qkv.bias"].chunk(3)
        dst[pre + "attn.q_bias"], dst[pre + "attn.v_bias"] = q_bias, v_bias
    # Their 1x1 conv emits channel c*P*P + i*P + j for pixel (i, j) of channel c (PixelShuffle's
    # order); our head emits (i*P + j)*C + c. perm[theirs] = ours.
    perm = torch.arange(PATCH * PATCH * CHANS).reshape(PATCH, PATCH, CHANS).permute(2, 0, 1).reshape(-1)
    dst["decoder.0.weight"] = src["head.weight"][perm][..., None, None]
    dst["decoder.0.bias"] = src["head.bias"][perm]
    model.load_state_dict(dst, strict=True)
    return model


def check_mask_counts(data) -> int:
    """Their MaskGenerator and ours hide the same number of aligned blocks; returns the cases run."""
    cases = 0
    for cells_side in (1, 2, 3, 4, 7, 10):
        for ratio in (0.1, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9):
            their = data.MaskGenerator(input_size=cells_side * 32, mask_patch_size=32, model_patch_size=16,
                                       mask_ratio=ratio)
            assert their.mask_count == num_masked_cells(cells_side**2, ratio), (cells_side, ratio)
            cases += 1
    np.random.seed(0)
    their_mask = data.MaskGenerator(input_size=GRID * 8, mask_patch_size=MASK_PATCH * 8, model_patch_size=8,
                                    mask_ratio=MASK_RATIO)()
    ours_mask = SimMIMMaskGenerator(GRID, MASK_PATCH, MASK_RATIO)(1, 0, torch.Generator().manual_seed(0)).mask
    assert their_mask.shape == (GRID, GRID) and their_mask.sum() == ours_mask.sum()
    return cases


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-dir", type=Path, required=True, help="checkout of github.com/microsoft/SimMIM")
    args = parser.parse_args()
    models, data = _import_authors(args.authors_dir.resolve())
    print(f"mask counts agree with the authors' MaskGenerator on {check_mask_counts(data)} settings")

    model, imgs, views = build_case()
    theirs_model = authors_model(models, model)
    # Their mask: (B, H/P, W/P) integers, as their loader collates MaskGenerator's arrays. Their
    # `mask.sum() + 1e-5` then runs in float32, where the 1e-5 vanishes next to the pixel count;
    # ours keeps it, a relative difference of 1e-5 / hidden pixels (~1e-8 here).
    mask = views.mask.reshape(BATCH, GRID, GRID).long()
    loss = theirs_model(imgs, mask)
    feats = theirs_model.encoder(imgs, mask)  # (B, D, G, G)
    rec = theirs_model.decoder(feats)  # (B, 3, S, S)
    theirs = summary(loss, feats, rec)

    our_loss, our_feats, our_rec = ours(model, imgs, views)
    print(f"max |ours - theirs|: loss {abs(our_loss - loss).item():.3g}, encoder tokens "
          f"{(our_feats - feats).abs().max().item():.3g}, reconstruction {(our_rec - rec).abs().max().item():.3g}")
    print("REFERENCE = {")
    for key, value in theirs.items():
        text = f"{value:.10g}" if isinstance(value, float) else "[" + ", ".join(f"{v:.10g}" for v in value) + "]"
        print(f'    "{key}": {text},')
    print("}")


if __name__ == "__main__":
    main()

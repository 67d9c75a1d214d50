"""Reference numbers of ConMIM from the authors' code, for tests/methods/test_conmim_reference.py.

Builds one small deterministic case (:func:`build_case`: seeded weights, a momentum network that
differs from the online one, images, blockwise masks and a perturbation of the momentum branch's
image, all in float64), copies our weights into two of the authors'
``VisionTransformerForMaskedImageModeling`` (github.com/TencentARC/ConMIM, imported at run time
from ``--authors-dir``; none of their code is in this repository), runs one step of their
``engine_for_pretraining.train_one_epoch`` (their loss, backward and momentum update) on it, and
prints the numbers the test commits, with the largest difference to our implementation.

Their ViT is configured as the plain ViT of this library: ``use_abs_pos_emb=True``,
``use_shared_rel_pos_bias=False`` (their pre-training default is a shared relative position bias
and no absolute positions), ``init_values=0`` (no layer scale; their default is 0.1),
``qkv_bias=True``, no dropout or drop path, ``use_mlp_projectors=True`` with our projector widths.
Their attention has no key bias; ours has one, which changes no attention output (it adds the
same q.b_k to every logit of a query, and softmax ignores that), so it is left random. Their
unused BEiT ``lm_head`` keeps its own initialisation.

Their step needs a 14x14 grid (``length = 196`` is written in their loop), so the case is a 14x14
grid of 2-px patches with the paper's masks (75 of 196 patches, blocks of at least 16). Their
masks come from Python's ``random``; ``check_masks`` replays the uniforms our generator read
through their ``MaskingGenerator`` and requires the same masks (the case's, and 200 more on other
grids and sizes, whose summary is committed too). The harness around their step
stands in for what a CPU-only process lacks: a ``.module`` wrapper instead of DDP, an optimizer
with learning rate 0 and a loss scaler that only runs ``backward`` (so their momentum update reads
the unchanged online weights), ``torch.cuda.synchronize`` as a no-op, and stub modules for the
``torch._six`` and ``tensorboardX`` imports of their ``utils.py``.

    git clone https://github.com/TencentARC/ConMIM /tmp/conmim_authors
    python tools/reference_conmim.py --authors-dir /tmp/conmim_authors
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import types
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from latentmim.data.perturbation import Perturbation
from latentmim.masking.block_masks import BlockMaskGenerator
from latentmim.methods.conmim import ConMIM, ConMIMProjector, ConMIMViews
from latentmim.models.vit import ViTEncoder

# The case: a 14x14 grid of 2-px RGB patches (28-px images), a 2-block ViT of width 32, a
# projector 32 -> 64 -> 64 -> 16, three images, EMA momentum 0.9 for the update that is checked.
GRID, PATCH, CHANS, DIM, DEPTH, HEADS = 14, 2, 3, 32, 2, 4
HIDDEN, OUT, BATCH, MOMENTUM, TAU = 64, 16, 3, 0.9, 0.1
MASK_SEED = 9  # the views' generator (masks drawn first): 74, 75 and 73 hidden patches


@torch.no_grad()
def reinit_(model: nn.Module, seed: int) -> None:
    """Give every parameter seeded, non-trivial random values (no zeros, no ones, no symmetry).

    Matrices ~ N(0, 1/fan_in); biases ~ N(0, 0.2^2); vector scales (LayerNorm and BatchNorm
    weights) ~ 1 + N(0, 0.2^2); the tokens (mask, cls) and the position table ~ N(0, 1), the scale
    of a patch embedding. The momentum network's parameters get their own values, so a loss
    computed with the online network as the target does not match.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
        if name.endswith("bias"):
            value = 0.2 * noise
        elif name.endswith("weight") and p.ndim == 1:
            value = 1.0 + 0.2 * noise
        elif name.endswith("weight"):
            value = noise / math.sqrt(p[0].numel())  # fan-in: every dim but the output one
        else:  # mask_token, cls_token, pos_embed
            value = noise
        p.copy_(value)


def case_perturbation() -> Perturbation:
    """The momentum branch's perturbation: every operation used by at least one image."""
    return Perturbation(
        jitter=torch.tensor([True, True, False]),
        factors=torch.tensor([[1.3, 0.7, 1.15, 0.08], [0.75, 1.25, 0.85, -0.06], [1.0, 1.0, 1.0, 0.0]]),
        order=torch.tensor([[3, 1, 0, 2], [0, 2, 3, 1], [0, 1, 2, 3]]),
        gray=torch.tensor([False, True, False]),
        blur_sigma=torch.tensor([0.0, 0.0, 0.2]),
        solarize=torch.tensor([True, False, False]),
    )


def build_case(seed: int = 0) -> tuple[ConMIM, Tensor, ConMIMViews]:
    """Our model with seeded weights, a batch of images and its views, all in float64.

    Returns:
        (model in train mode, imgs (B, C, S, S) normalised, views with the case's perturbation).
    """
    encoder = ViTEncoder(grid_size=GRID, patch_size=PATCH, in_chans=CHANS, embed_dim=DIM, depth=DEPTH,
                         num_heads=HEADS, freeze_pe=False)
    model = ConMIM(encoder, ConMIMProjector(DIM, HIDDEN, OUT), seed=seed)  # every other setting: defaults
    reinit_(model, seed + 1)
    model = model.double().train()
    g = torch.Generator().manual_seed(seed + 3)
    pixels = torch.rand(BATCH, CHANS, GRID * PATCH, GRID * PATCH, generator=g, dtype=torch.float64)
    imgs = (pixels - model.pixel_mean) / model.pixel_std
    views = model.sample_views(BATCH, torch.Generator().manual_seed(seed + MASK_SEED))
    # The branch the model's default perturbs (the paper: the momentum branch's full image) gets
    # the case's perturbation, which uses every operation.
    online, target = (None if aug is None else case_perturbation() for aug in (views.online_aug, views.target_aug))
    return model, imgs, ConMIMViews(views.masks, online, target)


def target_image(model: ConMIM, imgs: Tensor, views: ConMIMViews) -> Tensor:
    """The momentum branch's input: the perturbed images."""
    return model._perturbed(imgs, views.target_aug)


def ours(model: ConMIM, imgs: Tensor, views: ConMIMViews) -> dict[str, Tensor]:
    """Our loss, features, gradients and momentum update on the case (modifies ``model``)."""
    model.zero_grad(set_to_none=True)
    loss, _ = model(imgs, views)
    loss.backward()
    with torch.no_grad():
        online, target = model.features(imgs, views)
    enc = model.encoder
    out = {
        "loss": loss.detach(), "online": online, "target": target,
        "grad_mask_token": model.mask_token.grad, "grad_patch_embed": enc.patch_embed.proj.weight.grad,
        "grad_pos_embed": enc.pos_embed.grad, "grad_qkv": enc.blocks[0].attn.qkv.weight.grad,
        "grad_proj0": model.projector[0].weight.grad,
    }
    model.update_target(MOMENTUM)
    t = model.target_encoder
    out.update({
        "ema_pos_embed": t.pos_embed.detach().clone(), "ema_fc2": t.blocks[1].mlp.fc2.weight.detach().clone(),
        "ema_proj6": model.target_projector[6].weight.detach().clone(),
        "ema_bn4": model.target_projector[4].weight.detach().clone(),
    })
    return out


def _checksum(x: Tensor) -> float:
    """A weighted sum that changes with any entry, its position included."""
    w = torch.linspace(-1.0, 1.0, x.numel(), dtype=torch.float64).view_as(x)
    return (x.double() * w).sum().item()


def summary(r: dict[str, Tensor], mask: Tensor) -> dict[str, float | list[float]]:
    """The committed numbers: the loss, mask statistics and a few sums and slices."""
    ids = torch.arange(mask.shape[1], dtype=torch.float64)
    m = mask.double()
    return {
        "loss": r["loss"].item(),
        "mask_count": m.sum(1).tolist(),
        "mask_id_sum": (m * ids).sum(1).tolist(),
        "mask_id_sq_sum": (m * ids**2).sum(1).tolist(),
        "online_checksum": _checksum(r["online"]),
        "online_abs_sum": r["online"].abs().sum().item(),
        "online_slice": r["online"][1, 40, :4].tolist(),
        "target_checksum": _checksum(r["target"]),
        "target_abs_sum": r["target"].abs().sum().item(),
        "target_slice": r["target"][2, 100, :4].tolist(),
        "grad_mask_token": r["grad_mask_token"].flatten()[:4].tolist(),
        "grad_mask_token_norm": r["grad_mask_token"].norm().item(),
        "grad_patch_embed_checksum": _checksum(r["grad_patch_embed"]),
        "grad_pos_embed_checksum": _checksum(r["grad_pos_embed"]),
        "grad_qkv_checksum": _checksum(r["grad_qkv"]),
        "grad_proj0_checksum": _checksum(r["grad_proj0"]),
        "ema_pos_embed_checksum": _checksum(r["ema_pos_embed"]),
        "ema_fc2_checksum": _checksum(r["ema_fc2"]),
        "ema_proj6_checksum": _checksum(r["ema_proj6"]),
        "ema_bn4_checksum": _checksum(r["ema_bn4"]),
    }


# --------------------------------------------------------------------------------------------
# The authors' side
# --------------------------------------------------------------------------------------------


def _import_authors(authors_dir: Path) -> tuple[types.ModuleType, ...]:
    """Their model, training-step and mask modules, with stubs for two imports of ``utils.py``."""
    six = types.ModuleType("torch._six")
    six.inf = math.inf
    sys.modules.setdefault("torch._six", six)
    try:
        importlib.import_module("tensorboardX")
    except ImportError:
        tbx = types.ModuleType("tensorboardX")
        tbx.SummaryWriter = object
        sys.modules["tensorboardX"] = tbx
    sys.path.insert(0, str(authors_dir))
    return tuple(importlib.import_module(name)
                 for name in ("modeling_pretrain", "engine_for_pretraining", "masking_generator"))


def _copy_weights(theirs: nn.Module, encoder: ViTEncoder, projector: nn.Module, mask_token: Tensor | None) -> None:
    """Load one of our networks (encoder + projector [+ mask token]) into their model."""
    src = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    src.update({f"projector.{k}": v for k, v in projector.state_dict().items()})
    dst = theirs.state_dict()
    mapped = {}
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                "norm.weight", "norm.bias"):
        mapped[key] = src[f"encoder.{key}"]
    for i in range(DEPTH):
        pre = f"blocks.{i}."
        for key in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.qkv.weight",
                    "attn.proj.weight", "attn.proj.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                    "mlp.fc2.weight", "mlp.fc2.bias"):
            mapped[pre + key] = src[f"encoder.{pre}{key}"]
        q_bias, _k_bias, v_bias = src[f"encoder.{pre}attn.qkv.bias"].chunk(3)
        mapped[pre + "attn.q_bias"], mapped[pre + "attn.v_bias"] = q_bias, v_bias
    for key, value in src.items():
        if key.startswith("projector."):  # same Sequential indices; BatchNorm buffers included
            mapped["projectors." + key.removeprefix("projector.")] = value
    if mask_token is not None:
        mapped["mask_token"] = mask_token.detach()
    unknown = set(mapped) - set(dst)
    assert not unknown, unknown
    left = {k for k in set(dst) - set(mapped) if not k.startswith("lm_head.")}
    assert left <= {"mask_token"}, left  # only the momentum network keeps its own (unused) mask token
    dst.update(mapped)
    theirs.load_state_dict(dst, strict=True)


def authors_models(modeling_pretrain: types.ModuleType, model: ConMIM) -> tuple[nn.Module, nn.Module]:
    """Their online and momentum networks, plain ViTs holding our weights, in train mode."""
    def build() -> nn.Module:
        return modeling_pretrain.VisionTransformerForMaskedImageModeling(
            img_size=GRID * PATCH, patch_size=PATCH, in_chans=CHANS, embed_dim=DIM, depth=DEPTH,
            num_heads=HEADS, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0,
            drop_path_rate=0.0, norm_layer=partial(nn.LayerNorm, eps=1e-6), init_values=0.0,
            use_abs_pos_emb=True, use_rel_pos_bias=False, use_shared_rel_pos_bias=False,
            use_mlp_projectors=True, mlp_dim=HIDDEN, dim=OUT,
        ).double().train()

    online, momentum = build(), build()
    _copy_weights(online, model.encoder, model.projector, model.mask_token)
    _copy_weights(momentum, model.target_encoder, model.target_projector, None)
    for p in momentum.parameters():  # as their main(): no gradient through the momentum network
        p.requires_grad = False
    return online, momentum


class _Wrapper(nn.Module):
    """Stands in for DistributedDataParallel (``.module``) and records every output."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.outputs: list[Tensor] = []

    def forward(self, *args, **kwargs) -> Tensor:
        out = self.module(*args, **kwargs)
        self.outputs.append(out)
        return out


class _BackwardOnly:
    """Their loss scaler's interface; runs ``backward`` only, so no weight moves."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def __call__(self, loss: Tensor, optimizer, clip_grad=None, parameters=None, create_graph=False) -> float:
        self.losses.append(loss.item())
        loss.backward(create_graph=create_graph)
        grads = [p.grad.norm() for p in parameters if p.grad is not None]
        return torch.stack(grads).norm().item()

    def state_dict(self) -> dict[str, float]:
        return {"scale": 1.0}


def theirs(modules: tuple[types.ModuleType, ...], model: ConMIM, imgs: Tensor,
           views: ConMIMViews) -> dict[str, Tensor]:
    """One step of their ``train_one_epoch`` on the case; the same quantities as :func:`ours`."""
    modeling_pretrain, engine, _ = modules
    online, momentum = authors_models(modeling_pretrain, model)
    wrapped, wrapped_momentum = _Wrapper(online), _Wrapper(momentum)
    with torch.no_grad():
        imgs_aug = target_image(model, imgs, views)
    batch = (imgs, imgs_aug, views.mask.reshape(BATCH, GRID, GRID).long())
    scaler = _BackwardOnly()
    optimizer = torch.optim.SGD(online.parameters(), lr=0.0)
    if not torch.cuda.is_available():
        torch.cuda.synchronize = lambda *a, **k: None
    engine.train_one_epoch(
        wrapped, [(batch, None)], optimizer, torch.device("cpu"), 0, scaler, [MOMENTUM], wrapped_momentum,
        momentum, TAU, max_norm=0, log_writer=None, lr_scheduler=None, start_steps=0,
        lr_schedule_values=None, wd_schedule_values=None,
    )
    (loss,) = scaler.losses
    return {
        "loss": torch.tensor(loss, dtype=torch.float64),
        "online": wrapped.outputs[0].detach(), "target": wrapped_momentum.outputs[0].detach(),
        "grad_mask_token": online.mask_token.grad, "grad_patch_embed": online.patch_embed.proj.weight.grad,
        "grad_pos_embed": online.pos_embed.grad, "grad_qkv": online.blocks[0].attn.qkv.weight.grad,
        "grad_proj0": online.projectors[0].weight.grad,
        "ema_pos_embed": momentum.pos_embed.detach(), "ema_fc2": momentum.blocks[1].mlp.fc2.weight.detach(),
        "ema_proj6": momentum.projectors[6].weight.detach(), "ema_bn4": momentum.projectors[4].weight.detach(),
    }


class _Replay:
    """Python's ``random.uniform`` / ``random.randint`` reading a fixed list of uniforms."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.pos = 0

    def _next(self) -> float:
        u = self.values[self.pos]
        self.pos += 1
        return u

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self._next()

    def randint(self, a: int, b: int) -> int:
        return a + int(self._next() * (b - a + 1))


def _their_mask(masking_generator: types.ModuleType, gen: BlockMaskGenerator, uniforms: list[float]) -> Tensor:
    """Their ``MaskingGenerator`` with our sizes, reading ``uniforms``; (N,) bool."""
    replay = _Replay(uniforms)
    masking_generator.random = replay
    their = masking_generator.MaskingGenerator(
        gen.grid_size, num_masking_patches=gen.num_masked, min_num_patches=gen.min_block,
        max_num_patches=None, min_aspect=gen.min_aspect,
    )
    mask = torch.from_numpy(np.asarray(their(), dtype=bool)).reshape(-1)
    assert replay.pos == len(uniforms), "their generator read a different number of uniforms"
    return mask


# Mask settings replayed through their generator: (grid, mask_frac, min_block_frac), 40 images each.
MASK_SETTINGS = ((14, 75 / 196, 16 / 196), (4, 75 / 196, 16 / 196), (7, 0.5, 0.1), (10, 0.3, 0.02),
                 (14, 0.6, 16 / 196))


def our_masks() -> tuple[list[tuple[BlockMaskGenerator, Tensor, list[float]]], Tensor]:
    """Our masks of :data:`MASK_SETTINGS`: (generator, mask (N,), uniforms read) per image, and
    all masks flattened and concatenated (for :func:`mask_summary`)."""
    out = []
    for grid, frac, block_frac in MASK_SETTINGS:
        gen = BlockMaskGenerator.from_fractions(grid, frac, block_frac)
        trace: list[list[float]] = []
        masks = gen(40, torch.Generator().manual_seed(grid), trace)
        out += [(gen, mask, uniforms) for mask, uniforms in zip(masks, trace, strict=True)]
    return out, torch.cat([m for _, m, _ in out])


def mask_summary(flat: Tensor) -> dict[str, float]:
    """Hidden patches over all masks, and a position-weighted sum that changes with any patch."""
    w = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    return {"masks_hidden": flat.double().sum().item(), "masks_checksum": (flat.double() * w).sum().item()}


def check_masks(masking_generator: types.ModuleType, model: ConMIM, views: ConMIMViews) -> Tensor:
    """Our block masks equal theirs given the same uniforms; returns theirs, concatenated."""
    if not hasattr(np, "int"):  # their generator allocates with np.int, gone from NumPy >= 1.24
        np.int = int
    theirs_flat = []
    for gen, mask, uniforms in our_masks()[0]:
        their = _their_mask(masking_generator, gen, uniforms)
        assert torch.equal(mask, their), gen
        theirs_flat.append(their)
    # The case's own masks: the views' generator draws the masks first.
    trace: list[list[float]] = []
    again = model.masks(BATCH, torch.Generator().manual_seed(MASK_SEED), trace)
    assert torch.equal(again, views.mask)
    for mask, uniforms in zip(views.mask, trace, strict=True):
        assert torch.equal(mask, _their_mask(masking_generator, model.masks, uniforms))
    return torch.cat(theirs_flat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-dir", type=Path, required=True, help="checkout of github.com/TencentARC/ConMIM")
    args = parser.parse_args()
    modules = _import_authors(args.authors_dir.resolve())

    model, imgs, views = build_case()
    their_masks = check_masks(modules[2], model, views)
    print(f"block masks equal to the authors' MaskingGenerator: {len(MASK_SETTINGS) * 40 + BATCH} masks")
    their = theirs(modules, model, imgs, views)
    model, imgs, views = build_case()  # fresh: their step ran on copies, ours updates the model
    mine = ours(model, imgs, views)
    print("max |ours - theirs| / max |theirs|:")
    for key in their:
        diff = (mine[key] - their[key]).abs().max().item() / max(their[key].abs().max().item(), 1e-300)
        print(f"    {key:18s} {diff:.3g}")
    print("REFERENCE = {")
    for key, value in {**summary(their, views.mask), **mask_summary(their_masks)}.items():
        text = f"{value:.10g}" if isinstance(value, float) else "[" + ", ".join(f"{v:.10g}" for v in value) + "]"
        print(f'    "{key}": {text},')
    print("}")


if __name__ == "__main__":
    main()

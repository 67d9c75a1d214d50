"""Checkpoints in the Latent MIM authors' format, and an independent forward of their encoder.

Names, shapes and computations follow github.com/yibingwei-1/LatentMIM (models_lmim.py, vits.py,
xvits.py, util/misc.py CheckpointManager), restated here from scratch as plain tensor code.
"""

import math

import torch
import torch.nn.functional as F


def _block(prefix: str, d: int, g: torch.Generator) -> dict:
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    return {
        f"{prefix}norm1.weight": 1 + r(d), f"{prefix}norm1.bias": r(d),
        f"{prefix}attn.qkv.weight": r(3 * d, d), f"{prefix}attn.qkv.bias": r(3 * d),
        f"{prefix}attn.proj.weight": r(d, d), f"{prefix}attn.proj.bias": r(d),
        f"{prefix}norm2.weight": 1 + r(d), f"{prefix}norm2.bias": r(d),
        f"{prefix}mlp.fc1.weight": r(4 * d, d), f"{prefix}mlp.fc1.bias": r(4 * d),
        f"{prefix}mlp.fc2.weight": r(d, 4 * d), f"{prefix}mlp.fc2.bias": r(d),
    }


def _vit(prefix: str, d: int, depth: int, patch: int, grid: int, chans: int, mlp_dim: int, mlp_depth: int,
         g: torch.Generator) -> dict:
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    state = {
        # random rows (not sin-cos): a wrong id -> row mapping cannot go unnoticed
        f"{prefix}pos_embed.pos_embeds": torch.cat([torch.zeros(1, d), r(grid * grid, d)]),
        f"{prefix}cls_token": r(1, 1, d),
        f"{prefix}embed.proj.weight": r(d, patch * patch * chans), f"{prefix}embed.proj.bias": r(d),
        f"{prefix}norm.weight": 1 + r(d), f"{prefix}norm.bias": r(d),
    }
    for i in range(depth):
        state.update(_block(f"{prefix}blocks.{i}.", d, g))
    for layer in range(mlp_depth):  # _build_mlp(out_norm=True): linear{l} (no bias), norm{l}
        d_in = d if layer == 0 else mlp_dim
        d_out = d if layer == mlp_depth - 1 else mlp_dim
        state[f"{prefix}head.linear{layer}.weight"] = r(d_out, d_in)
        state[f"{prefix}head.norm{layer}.weight"] = 1 + r(d_out)
        state[f"{prefix}head.norm{layer}.bias"] = r(d_out)
    return state


def _decoder(d: int, e: int, depth: int, grid: int, g: torch.Generator) -> dict:
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    state = {
        "decoder.pos_embed.pos_embeds": torch.cat([torch.zeros(1, e), r(grid * grid, e)]),
        "decoder.cls_token": r(1, 1, e), "decoder.mask_token": r(1, 1, e),
        "decoder.embed.weight": r(e, d), "decoder.embed.bias": r(e),
        "decoder.norm.weight": 1 + r(e), "decoder.norm.bias": r(e),
        "decoder.head.weight": r(d, e), "decoder.head.bias": r(d),
    }
    for i in range(depth):
        p = f"decoder.blocks.{i}."
        state.update({
            f"{p}norm1.weight": 1 + r(e), f"{p}norm1.bias": r(e),
            f"{p}self_attn.qkv.weight": r(3 * e, e), f"{p}self_attn.qkv.bias": r(3 * e),
            f"{p}self_attn.proj.weight": r(e, e), f"{p}self_attn.proj.bias": r(e),
            f"{p}norm2q.weight": 1 + r(e), f"{p}norm2q.bias": r(e),
            f"{p}norm2kv.weight": 1 + r(e), f"{p}norm2kv.bias": r(e),
            f"{p}cross_attn.q_proj.weight": r(e, e), f"{p}cross_attn.q_proj.bias": r(e),
            f"{p}cross_attn.kv_proj.weight": r(2 * e, e), f"{p}cross_attn.kv_proj.bias": r(2 * e),
            f"{p}cross_attn.proj.weight": r(e, e), f"{p}cross_attn.proj.bias": r(e),
            f"{p}norm3.weight": 1 + r(e), f"{p}norm3.bias": r(e),
            f"{p}mlp.fc1.weight": r(4 * e, e), f"{p}mlp.fc1.bias": r(4 * e),
            f"{p}mlp.fc2.weight": r(e, 4 * e), f"{p}mlp.fc2.bias": r(e),
        })
    return state


def authors_checkpoint(d=192, depth=2, target_depth=2, patch=4, grid=4, chans=3, mlp_dim=64, mlp_depth=2,
                       dec_dim=32, dec_depth=1, seed=0) -> dict:
    """What their CheckpointManager saves for a DDP-wrapped LMIM (keys prefixed ``module.``)."""
    g = torch.Generator().manual_seed(seed)
    state = {**_vit("encoder.", d, depth, patch, grid, chans, mlp_dim, mlp_depth, g),
             **_vit("target_encoder.", d, target_depth, patch, grid, chans, mlp_dim, mlp_depth, g),
             **_decoder(d, dec_dim, dec_depth, grid, g)}
    return {
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "weight_decay": 0.05, "params": [0, 1]}]},
        "loss_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                        "_growth_tracker": 0},
        "epoch": 800,
    }


def _layer_norm(x, state, key):
    return F.layer_norm(x, x.shape[-1:], state[f"{key}.weight"], state[f"{key}.bias"], eps=1e-6)


def authors_encoder_forward(state: dict, imgs: torch.Tensor, num_heads: int, prefix: str = "encoder.") -> tuple:
    """Their VIT.forward on whole images (gap 0): (tokens after the final norm, after the head).

    Args:
        state: their state dict without the ``module.`` prefix.
        imgs: (B, C, G*P, G*P).
    """
    b, c, h, _ = imgs.shape
    w = state[f"{prefix}embed.proj.weight"]
    p = math.isqrt(w.shape[1] // c)
    gsz = h // p
    # Patchify: (B, C, G, P, G, P) -> (B, G, G, P, P, C) -> (B, N, P*P*C)
    x = imgs.reshape(b, c, gsz, p, gsz, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gsz * gsz, p * p * c)
    x = x @ w.T + state[f"{prefix}embed.proj.bias"]
    x = torch.cat([state[f"{prefix}cls_token"].expand(b, -1, -1), x], dim=1)
    x = x + state[f"{prefix}pos_embed.pos_embeds"][None]  # row 0 for cls, row 1 + id for patches
    depth = len({k.split(".")[2] for k in state if k.startswith(f"{prefix}blocks.")})
    for i in range(depth):
        k = f"{prefix}blocks.{i}."
        y = _layer_norm(x, state, k + "norm1")
        n, dim = y.shape[1], y.shape[2]
        qkv = (y @ state[k + "attn.qkv.weight"].T + state[k + "attn.qkv.bias"]).reshape(b, n, 3, num_heads, dim // num_heads)
        q, kk, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ kk.transpose(-2, -1) * (dim // num_heads) ** -0.5).softmax(-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, dim)
        x = x + y @ state[k + "attn.proj.weight"].T + state[k + "attn.proj.bias"]
        y = _layer_norm(x, state, k + "norm2")
        y = F.gelu(y @ state[k + "mlp.fc1.weight"].T + state[k + "mlp.fc1.bias"])
        x = x + y @ state[k + "mlp.fc2.weight"].T + state[k + "mlp.fc2.bias"]
    x = _layer_norm(x, state, f"{prefix}norm")
    z = x
    layers = len([k for k in state if k.startswith(f"{prefix}head.linear")])
    for layer in range(layers):
        z = z @ state[f"{prefix}head.linear{layer}.weight"].T
        z = F.layer_norm(z, z.shape[-1:], state[f"{prefix}head.norm{layer}.weight"], state[f"{prefix}head.norm{layer}.bias"])
        if layer < layers - 1:
            z = F.gelu(z)
    return x, z

"""Import the Latent MIM authors' checkpoints (github.com/yibingwei-1/LatentMIM).

Their model (``models_lmim.LMIM``) names and lays out tensors differently from ours:

============================================  ===============================================
theirs                                        ours
============================================  ===============================================
``encoder.embed.proj`` Linear(P*P*C -> D) on  ``encoder.patch_embed.proj`` Conv(C -> D, P, P)
patches flattened (row, col, channel)         (the same linear map, timm's layout)
``encoder.pos_embed.pos_embeds`` (1+N, D)     ``encoder.pos_embed`` (1, 1+N, D), row 0 = cls
``encoder.head.linear{l}``, ``.norm{l}``      ``projector.mlp.{3l}``, ``.{3l+1}``
``target_encoder.*`` (its own ``head``)       ``target_encoder.*``, ``target_projector.*``
``decoder.cls_token``                         ``decoder.cls_query``
decoder block ``norm2q/norm2kv/norm3``        ``norm_q/norm_kv/norm2``
``cross_attn.q_proj/kv_proj``                 ``cross_attn.q/kv``
``decoder.pos_embed.pos_embeds``              a fixed table rebuilt by the decoder (dropped)
============================================  ===============================================

Blocks, norms and the decoder's other tensors keep their names. Their position tables place
patch (i, j) at (i, j) * G / (G - 1) (``linspace(0, 1, G) * G``) rather than at integer
positions; the encoder's table is imported as stored, so features are reproduced exactly.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from latentmim.config.errors import ConfigError
from latentmim.interop.arch import EncoderArch, count_blocks, grid_from_positions, heads_for

# Decoder block renames, theirs -> ours (applied in order).
_DECODER_RENAMES = (
    (".norm2q.", ".norm_q."),
    (".norm2kv.", ".norm_kv."),
    (".norm3.", ".norm2."),
    (".cross_attn.q_proj.", ".cross_attn.q."),
    (".cross_attn.kv_proj.", ".cross_attn.kv."),
)
DECODER_HEADS = 16  # build_lmim's decoder_num_heads (not stored in the weights)


def _patch_layout(weight: Tensor, source: str) -> tuple[int, int]:
    """(in_chans, patch_size) of a linear patch embedding of shape (D, P*P*C)."""
    flat = weight.shape[1]
    for chans in (3, 1):  # their Patchify is written for RGB; grayscale for completeness
        p = math.isqrt(flat // chans)
        if flat % chans == 0 and p * p * chans == flat:
            return chans, p
    raise ConfigError(f"'{source}': patch embedding input {flat} is not P*P*3 or P*P")


def encoder_arch(state: dict[str, Tensor], source: str, prefix: str = "encoder.",
                 num_heads: int | None = None) -> EncoderArch:
    """Architecture of their online (``encoder.``) or target (``target_encoder.``) encoder."""
    weight = state[f"{prefix}embed.proj.weight"]
    chans, patch = _patch_layout(weight, source)
    grid = grid_from_positions(state[f"{prefix}pos_embed.pos_embeds"].shape[0], source)
    width = weight.shape[0]
    return EncoderArch(width, count_blocks(state, prefix), heads_for(width, num_heads, source), patch, grid,
                       chans).check(source)


def encoder_state(state: dict[str, Tensor], source: str, prefix: str = "encoder.") -> dict[str, Tensor]:
    """Their encoder's tensors under timm / :class:`ViTEncoder` names (projector excluded)."""
    weight = state[f"{prefix}embed.proj.weight"]  # (D, P*P*C), input flattened (row, col, channel)
    chans, patch = _patch_layout(weight, source)
    out = {
        # (D, P*P*C) -> (D, P, P, C) -> (D, C, P, P): the conv kernel computing the same map.
        "patch_embed.proj.weight": weight.reshape(weight.shape[0], patch, patch, chans).permute(0, 3, 1, 2).contiguous(),
        "patch_embed.proj.bias": state[f"{prefix}embed.proj.bias"],
        "pos_embed": state[f"{prefix}pos_embed.pos_embeds"][None].clone(),  # (1, 1+N, D)
        "cls_token": state[f"{prefix}cls_token"],
    }
    for key, value in state.items():
        if key.startswith((f"{prefix}blocks.", f"{prefix}norm.")):
            out[key[len(prefix):]] = value
    return out


def projector_state(state: dict[str, Tensor], prefix: str = "encoder.") -> dict[str, Tensor]:
    """Their ``head`` MLP (Linear -> LN [-> GELU]) under :class:`Projector` names."""
    out = {}
    head = f"{prefix}head."
    for key, value in state.items():
        if not key.startswith(head):
            continue
        layer, _, param = key[len(head):].partition(".")  # "linear0", "weight"
        kind, index = layer.rstrip("0123456789"), int(layer[len(layer.rstrip("0123456789")):])
        # ours: a flat Sequential with [Linear, LayerNorm, GELU] per layer (no GELU after the last)
        out[f"mlp.{3 * index + (0 if kind == 'linear' else 1)}.{param}"] = value
    return out


def decoder_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Their cross-attention decoder under :class:`CrossAttentionDecoder` names."""
    out = {}
    for key, value in state.items():
        if not key.startswith("decoder.") or key == "decoder.pos_embed.pos_embeds":
            continue
        name = key[len("decoder."):]
        if name == "cls_token":
            name = "cls_query"
        for old, new in _DECODER_RENAMES:
            name = name.replace(old, new)
        out[name] = value
    return out


def model_state(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Their whole LMIM under :class:`latentmim.methods.lmim.LatentMIM` names."""
    out: dict[str, Tensor] = {}
    parts = [("encoder.", encoder_state(state, source)), ("projector.", projector_state(state)),
             ("decoder.", decoder_state(state))]
    if count_blocks(state, "target_encoder."):
        parts += [("target_encoder.", encoder_state(state, source, "target_encoder.")),
                  ("target_projector.", projector_state(state, "target_encoder."))]
    for prefix, part in parts:
        out.update({prefix + k: v for k, v in part.items()})
    return out


def config_keys(state: dict[str, Tensor], source: str, num_heads: int | None = None) -> dict[str, Any]:
    """Pre-training config keys read off their weights (others keep the paper's defaults)."""
    arch = encoder_arch(state, source, num_heads=num_heads)
    keys: dict[str, Any] = arch.config()
    linears = sorted(k for k in state if k.startswith("encoder.head.linear") and k.endswith(".weight"))
    keys["proj"] = {"mlp_depth": len(linears), "mlp_dim": state[linears[0]].shape[0] if len(linears) > 1 else 4096}
    target_depth = count_blocks(state, "target_encoder.")
    keys["target_depth"] = target_depth if 0 < target_depth < arch.depth else None
    if "decoder.embed.weight" in state:
        keys.update(decoder_embed_dim=state["decoder.embed.weight"].shape[0], decoder_num_heads=DECODER_HEADS,
                    decoder_depth=count_blocks(state, "decoder."), decoder_type="cross")
    return keys

"""The shape of a ViT encoder as read off a state dict, and the encoder it builds.

Widths, depths, patch and grid sizes are visible in the tensors; the number of attention heads
is not (it only splits the width), so it comes from the standard ViT family by width unless
given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from latentmim.config.errors import ConfigError
from latentmim.models.vit import VIT_PRESETS, ViTEncoder

# Standard ViT widths -> heads (ViT-Ti/S/B/L/H; also MAE's and the Latent MIM authors' presets).
HEADS_BY_WIDTH = {size.embed_dim: size.num_heads for size in VIT_PRESETS.values()}
PRESET_BY_WIDTH = {size.embed_dim: name for name, size in VIT_PRESETS.items()}


@dataclass(frozen=True)
class EncoderArch:
    """Everything needed to rebuild a :class:`ViTEncoder`.

    ``final_norm`` is False for an export whose pooled output is the NN feature: the mean of the
    patch tokens before the final norm, which the export therefore leaves out.
    """

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int
    grid_size: int
    in_chans: int
    final_norm: bool = True

    def check(self, source: str) -> EncoderArch:
        """Refuse sizes no ViT has, before anything is allocated; returns self.

        Raises:
            ConfigError: naming ``source`` and the size.
        """
        for name in ("embed_dim", "depth", "num_heads", "patch_size", "grid_size", "in_chans"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"'{source}': {name} must be a positive integer, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"'{source}': num_heads={self.num_heads} does not divide embed_dim={self.embed_dim}")
        if self.in_chans not in (1, 3):
            raise ConfigError(f"'{source}': in_chans must be 1 or 3, got {self.in_chans}")
        return self

    def build(self) -> ViTEncoder:
        return ViTEncoder(grid_size=self.grid_size, patch_size=self.patch_size, in_chans=self.in_chans,
                          embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
                          final_norm=self.final_norm)

    @classmethod
    def of(cls, encoder: ViTEncoder) -> EncoderArch:
        """The arch of a built encoder."""
        return cls(encoder.embed_dim, len(encoder.blocks), encoder.blocks[0].attn.num_heads,
                   encoder.patch_size, encoder.grid_size, encoder.in_chans,
                   not isinstance(encoder.norm, nn.Identity))

    def config(self) -> dict[str, Any]:
        """The pre-training config keys that describe this encoder."""
        preset = PRESET_BY_WIDTH.get(self.embed_dim, "vit_base")
        return {"encoder": preset, "embed_dim": self.embed_dim, "depth": self.depth, "num_heads": self.num_heads,
                "patch_size": self.patch_size, "grid_size": self.grid_size}


def heads_for(width: int, num_heads: int | None, source: str) -> int:
    """Heads of a ViT of this width: ``num_heads`` if given, else the standard preset's."""
    if num_heads is not None:
        if width % num_heads:
            raise ConfigError(f"num_heads={num_heads} does not divide the width {width} of '{source}'")
        return num_heads
    if width not in HEADS_BY_WIDTH:
        raise ConfigError(
            f"'{source}': width {width} is not a standard ViT width ({', '.join(map(str, HEADS_BY_WIDTH))}); "
            "pass num_heads=N"
        )
    return HEADS_BY_WIDTH[width]


def count_blocks(state: dict[str, Tensor], prefix: str) -> int:
    """Number of ``{prefix}blocks.{i}.`` entries (0 if none)."""
    pattern = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.")
    found = {int(m.group(1)) for k in state if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def grid_from_positions(num_rows: int, source: str, with_cls: bool = True) -> int:
    """G from a position table of ``G*G (+1)`` rows."""
    n = num_rows - (1 if with_cls else 0)
    g = math.isqrt(n)
    if g * g != n:
        raise ConfigError(f"'{source}': position table of {num_rows} rows is not a square grid (+ cls)")
    return g


def arch_from_timm_state(state: dict[str, Tensor], source: str, num_heads: int | None = None) -> EncoderArch:
    """Arch of a timm / MAE / latentmim encoder state dict (conv patch embedding, ``pos_embed``)."""
    try:
        w = state["patch_embed.proj.weight"]  # (D, C, P, P)
        pos = state["pos_embed"]  # (1, 1+N, D)
    except KeyError as err:
        raise ConfigError(f"'{source}': no ViT encoder weights ({err.args[0]} missing)") from None
    if not isinstance(w, Tensor) or w.ndim != 4 or not isinstance(pos, Tensor) or pos.ndim != 3:
        raise ConfigError(f"'{source}': 'patch_embed.proj.weight' must be a (D, C, P, P) tensor and "
                          "'pos_embed' a (1, 1+N, D) one")
    width, in_chans, patch, _ = w.shape
    arch = EncoderArch(width, count_blocks(state, ""), heads_for(width, num_heads, source), patch,
                       grid_from_positions(pos.shape[-2], source), in_chans, "norm.weight" in state)
    return arch.check(source)

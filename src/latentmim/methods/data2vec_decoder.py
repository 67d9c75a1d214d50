"""The light convolutional decoder of data2vec 2.0: fill the masked grid cells from their neighbours.

Visible tokens are placed on the G x G grid at their patch positions, every other cell gets a
learned mask token, and a few residual grouped 3x3 convolutions spread information; the cells of
the target patches are read out. Convolutions know positions by construction, so no position
embedding is needed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _ConvLayer(nn.Module):
    """Conv2d (grouped, same padding) -> LayerNorm over channels -> GELU."""

    def __init__(self, dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=groups)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        """(B, E, G, G) -> (B, E, G, G)."""
        y = self.conv(x).permute(0, 2, 3, 1)  # channels last for the LayerNorm
        return self.act(self.norm(y)).permute(0, 3, 1, 2)


class ConvDecoder(nn.Module):
    """data2vec-2.0-style decoder.

    Args:
        in_dim: encoder width D.
        out_dim: width of the predicted targets (the teacher's D).
        grid_size: G.
        embed_dim: decoder width E.
        layers: residual conv layers.
        kernel: conv kernel side (odd).
        groups: conv groups (divides E).
    """

    def __init__(
        self, in_dim: int, out_dim: int, grid_size: int, embed_dim: int = 512, layers: int = 5,
        kernel: int = 3, groups: int = 16,
    ) -> None:
        super().__init__()
        self.grid_size = grid_size
        self.embed = nn.Linear(in_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.layers = nn.ModuleList(_ConvLayer(embed_dim, kernel, groups) for _ in range(layers))
        self.head = nn.Linear(embed_dim, out_dim)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, vis_tokens: Tensor, vis_ids: Tensor, trg_ids: Tensor) -> Tensor:
        """Predict the targets' latents.

        Args:
            vis_tokens: (B, V, D) encoder outputs of the visible patches (cls excluded).
            vis_ids: (B, V) their grid ids; trg_ids: (B, T) the ids to predict.

        Returns:
            (B, T, out_dim).
        """
        b, g = vis_tokens.shape[0], self.grid_size
        x = self.embed(vis_tokens)  # (B, V, E)
        e = x.shape[-1]
        canvas = self.mask_token.to(x.dtype).expand(b, g * g, e).clone()  # (B, N, E)
        canvas.scatter_(1, vis_ids[..., None].expand(-1, -1, e), x)
        h = canvas.transpose(1, 2).reshape(b, e, g, g)  # raster order: id = row * G + col
        for layer in self.layers:
            h = h + layer(h)
        h = h.reshape(b, e, g * g).transpose(1, 2)  # (B, N, E)
        out = torch.gather(h, 1, trg_ids[..., None].expand(-1, -1, e))  # (B, T, E)
        return self.head(out)

"""Position tables: the authors' spacing (cell i at i * G/(G-1)) for Latent MIM, MAE's integer one."""

import math

import torch

from latentmim.config.load import compose_config
from latentmim.methods.factory import build_model
from latentmim.models.pos_embed import sincos_2d, spacing_factor


def test_authors_spacing_by_hand():
    g, dim = 4, 8
    table = sincos_2d(dim, g, cls_token=False, spacing=spacing_factor("authors", g))
    # cell (row 0, col 1) sits at column coordinate 4/3; quarter width 2: frequencies 1 and 1/100
    x = 4 / 3
    expected_col = [math.sin(x), math.sin(x / 100), math.cos(x), math.cos(x / 100)]
    assert torch.allclose(table[1, :4], torch.tensor(expected_col), atol=1e-6)
    assert torch.allclose(table[1, 4:], torch.tensor([0.0, 0.0, 1.0, 1.0]), atol=1e-6)  # row 0
    # the last cell sits at (G, G) = linspace(0, 1, G)[-1] * G
    last = torch.tensor([math.sin(4.0), math.sin(0.04), math.cos(4.0), math.cos(0.04)])
    assert torch.allclose(table[-1], torch.cat([last, last]), atol=1e-6)
    assert spacing_factor("integer", g) == 1.0 and spacing_factor("authors", 1) == 1.0


def test_lmim_uses_the_authors_table_and_mae_its_own(tiny):
    lmim = build_model(compose_config(tiny), 3)
    g = lmim.encoder.grid_size
    authors = sincos_2d(lmim.encoder.embed_dim, g, spacing=g / (g - 1))
    assert torch.allclose(lmim.encoder.pos_embed[0], authors)
    assert torch.allclose(lmim.decoder.pos_embed, sincos_2d(lmim.decoder.pos_embed.shape[1], g, spacing=g / (g - 1)))
    mae = build_model(compose_config([*tiny, "method=mae", "pos_spacing=integer"]), 3)
    assert torch.allclose(mae.encoder.pos_embed[0], sincos_2d(mae.encoder.embed_dim, g))

"""Dense patch features at any resolution: equal to the encoder's own forward at the trained grid,
position tables checked against an independent numpy sin-cos formula."""

import numpy as np
import pytest
import torch

from latentmim.config.errors import ConfigError
from latentmim.eval.dense.features import (
    dense_tokens,
    encoder_features,
    patch_aligned_size,
    pixel_features,
    position_table,
)
from latentmim.masking.patchify import all_ids, patchify
from latentmim.models.vit import build_encoder


@pytest.fixture
def encoder():
    torch.manual_seed(0)
    return build_encoder("vit_tiny", grid_size=4, patch_size=4, embed_dim=32, depth=2, num_heads=2).eval()


def numpy_sincos(dim: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """MAE's 2-D sin-cos table written out in numpy: [sin(col w), cos(col w), sin(row w), cos(row w)]."""
    omega = 1.0 / 10000 ** (np.arange(dim // 4) / (dim / 4))
    parts = []
    for pos in (cols, rows):
        ang = pos[:, None] * omega[None]
        parts += [np.sin(ang), np.cos(ang)]
    return np.concatenate(parts, axis=1)


def test_dense_tokens_equal_forward_patches_at_the_trained_grid(encoder):
    x = torch.randn(2, 3, 16, 16)
    normed, prenorm = encoder.forward_patches(patchify(x, 4), all_ids(2, 4), return_prenorm=True)
    got = dense_tokens(encoder, x, "prenorm")
    torch.testing.assert_close(got, prenorm[:, 1:].reshape(2, 4, 4, 32), rtol=1e-5, atol=1e-5)
    got = dense_tokens(encoder, x, "normed")
    torch.testing.assert_close(got, normed[:, 1:].reshape(2, 4, 4, 32), rtol=1e-5, atol=1e-5)


def test_position_tables(encoder):
    torch.testing.assert_close(position_table(encoder, 4, 4), encoder.pos_embed[0, 1:])
    # extend: integer positions of the larger grid
    r, c = np.divmod(np.arange(6 * 8), 8)
    ref = numpy_sincos(32, r.astype(float), c.astype(float))
    np.testing.assert_allclose(position_table(encoder, 6, 8, "extend").numpy(), ref, atol=1e-6)
    # interpolate: the 8x8 grid spans the trained 4x4 range, (i + 0.5) * 4 / 8 - 0.5
    r, c = np.divmod(np.arange(64), 8)
    ref = numpy_sincos(32, (r + 0.5) / 2 - 0.5, (c + 0.5) / 2 - 0.5)
    np.testing.assert_allclose(position_table(encoder, 8, 8).numpy(), ref, atol=1e-6)


def test_learned_position_table_is_resized_not_replaced(encoder):
    with torch.no_grad():
        encoder.pos_embed.normal_()
    table = position_table(encoder, 8, 8)
    assert table.shape == (64, 32)
    grid = encoder.pos_embed[0, 1:].reshape(4, 4, 32)
    # bicubic resize of a 2x upsampling keeps the mean of each 2x2 block close to the original
    assert torch.corrcoef(torch.stack([table.reshape(4, 2, 4, 2, 32).mean((1, 3)).flatten(),
                                       grid.flatten()]))[0, 1] > 0.9  # fmt: skip
    with pytest.raises(ConfigError, match="extend"):
        position_table(encoder, 8, 8, "extend")


def test_rectangular_inputs_and_feature_functions(encoder):
    x = torch.randn(1, 3, 24, 40)
    assert dense_tokens(encoder, x).shape == (1, 6, 10, 32)
    assert encoder_features(encoder)(x).shape == (6, 10, 32)
    raw = pixel_features(4)(x)
    assert raw.shape == (6, 10, 48)
    torch.testing.assert_close(raw[1, 2], x[0, :, 4:8, 8:12].permute(1, 2, 0).flatten())
    square = torch.randn(1, 3, 16, 16)  # same layout as the encoder's patchify
    torch.testing.assert_close(pixel_features(4)(square).flatten(0, 1), patchify(square, 4)[0])
    with pytest.raises(ValueError, match="multiple of the patch size"):
        dense_tokens(encoder, torch.randn(1, 3, 18, 16))
    with pytest.raises(ConfigError, match="feature"):
        dense_tokens(encoder, x, "cls")


def test_patch_aligned_size():
    assert patch_aligned_size(480, 854, 480, 16) == (480, 848)  # DAVIS 480p with ViT/16
    assert patch_aligned_size(100, 50, 64, 8) == (128, 64)
    assert patch_aligned_size(10, 10, 2, 8) == (8, 8)  # at least one patch

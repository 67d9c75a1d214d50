"""Losses between predicted and target latents, chosen by name (``loss=...``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor

from latentmim.losses.patch_disc import patch_disc_loss
from latentmim.losses.regression import regression_loss

LatentLoss = Callable[[Tensor, Tensor], Tensor]

# ``infonce_patches`` is the authors' name for patch discrimination; ``patch_disc`` the paper's.
LATENT_LOSSES = ("infonce_patches", "patch_disc", "mse", "l1", "huber", "norm_l2")


def build_latent_loss(name: str, tau: float = 0.2, huber_delta: float = 1.0) -> LatentLoss:
    """Return ``loss(pred (B,T,D), target (B,T,D)) -> scalar`` for a loss name."""
    if name in ("infonce_patches", "patch_disc"):
        return partial(patch_disc_loss, tau=tau)
    if name in ("mse", "l1", "huber", "norm_l2"):
        return partial(regression_loss, kind=name, huber_delta=huber_delta)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LATENT_LOSSES)}")

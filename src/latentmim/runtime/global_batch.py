"""Per-image randomness drawn for the global batch, so W processes reproduce one process.

Under DDP rank ``r`` of ``W`` holds the images at positions ``r, r + W, ...`` of the global
batch (the strided sharding of :class:`latentmim.data.loader.EpochSampler`). Anything random
*per image* must then be what those positions would get in a single-process run with the same
global batch:

* views (masks and patch offsets) are drawn from the step's generator for the whole global
  batch on every rank, and each rank keeps its rows (:func:`rank_views`);
* drop path draws its keep mask from the global torch RNG; :class:`GlobalBatchDropPath` draws
  the mask of the whole global batch (identical on every rank, since all ranks seed and consume
  the RNG identically) and keeps the rank's rows.

The transformer itself has no batch statistics (LayerNorm, no BatchNorm), so with these two the
DDP run equals the single-process one up to the order of floating-point reductions.
"""

from __future__ import annotations

from torch import Tensor, nn

from latentmim.masking.views import V


def rank_views(views: V, rank: int, world_size: int) -> V:
    """Rows ``rank::world_size`` of the global batch's views.

    Args:
        views: views of the global batch of W*B images (any method's view type).
        rank, world_size: this process and the number of processes.

    Returns:
        The views of this rank's B images.
    """
    if world_size == 1:
        return views
    return views.rows(slice(rank, None, world_size))


class GlobalBatchDropPath(nn.Module):
    """Stochastic depth whose per-sample mask is the single-process mask of the global batch.

    Same arithmetic as ``timm.layers.DropPath`` (Bernoulli keep mask, scaled by 1/keep), with
    the mask drawn for ``W * B`` samples and sliced to this rank's rows.

    Args:
        drop_prob: probability of dropping the residual branch of a sample.
        rank, world_size: this process and the number of processes.
        scale_by_keep: divide kept samples by the keep probability (timm's default).
    """

    def __init__(self, drop_prob: float, rank: int, world_size: int, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.rank = rank
        self.world_size = world_size
        self.scale_by_keep = scale_by_keep

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, D) -> (B, L, D) with whole samples dropped in training."""
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0] * self.world_size,) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)[self.rank :: self.world_size]  # (B, 1, 1)
        if keep > 0.0 and self.scale_by_keep:
            mask.div_(keep)
        return x * mask


def use_global_batch_drop_path(model: nn.Module, rank: int, world_size: int) -> int:
    """Replace every ``timm.layers.DropPath`` in ``model`` by :class:`GlobalBatchDropPath`.

    Parameter names and the state dict are unchanged (drop path has no state).

    Returns:
        The number of modules replaced.
    """
    from timm.layers import DropPath

    if world_size == 1:
        return 0
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, DropPath)]
    for name, m in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, GlobalBatchDropPath(m.drop_prob, rank, world_size, m.scale_by_keep))
    return len(targets)

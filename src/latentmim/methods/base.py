"""The contract between a training loop and a pre-training method.

A method is an ``nn.Module`` that owns everything specific to it: its networks, how it masks an
image (its *views*), the schedules it keeps as a function of training progress (Latent MIM's
similarity goal), and its target network. The engine, or a user's own loop, drives every method
with the same calls, per micro-batch::

    model.set_progress(step / total_steps)        # fraction of the run in [0, 1]
    if first_micro_batch_of_the_optimizer_step:
        model.update_target(model.momentum_at(0.99, step / total_steps))  # EMA (no-op without one)
    views = model.sample_views(len(images), generator)   # or omit: drawn inside forward
    loss, metrics = model(images, views)          # images: (B, C, S, S) training crops
    loss.backward()

``metrics`` are detached scalar tensors (``loss_pred`` and the similarities ``avg_sim_*`` of the
collapse monitor, docs/method.md#collapse-monitor); the engine averages them over processes and
logs them on its print interval, so a step never waits on the host.

Masks are drawn on the CPU from an explicit generator, so the views of a step are a pure function
of (seed, step) and a multi-process run can draw the whole global batch's views and keep its own
rows (``views.rows``): see :mod:`latentmim.runtime.global_batch`.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from latentmim.masking.views import ViewBatch, sample_views
from latentmim.methods.ema import ema_momentum
from latentmim.models.vit import ViTEncoder


class PretrainMethod(nn.Module):
    """Base class of every pre-training method (Latent MIM, MAE, PCAE, data2vec, ...).

    Subclasses implement :meth:`forward` and, when they have a target network,
    :meth:`update_target`; those with other masks override :meth:`sample_views`.

    Args:
        encoder: the online ViT encoder: the network that is kept, exported and evaluated.
        num_vis: visible patches per image in the default random views.
        patch_gap: gap g between patches in the training crop (crop side G*(P+g)).
        seed: seed of the generator that draws views inside :meth:`forward` when none are
            given (the engine always passes its own, seeded by (seed, step)).

    Attributes:
        uses_labels: True for methods that train with the batch's labels (the supervised
            ceiling): the engine then calls ``model(images, views, labels=labels)``.
    """

    uses_labels: ClassVar[bool] = False

    def __init__(self, encoder: ViTEncoder, num_vis: int, patch_gap: int = 0, seed: int = 0) -> None:
        super().__init__()
        n = encoder.grid_size**2
        if not 1 <= num_vis <= n:
            raise ValueError(f"num_vis must be in [1, {n}] for a {encoder.grid_size}x{encoder.grid_size} grid, got {num_vis}")
        self.encoder = encoder
        self.num_vis = num_vis
        self.patch_gap = patch_gap
        self.seed = seed
        self._generator: torch.Generator | None = None  # created on first use (not state)

    @property
    def grid_size(self) -> int:
        """G: patches per side."""
        return self.encoder.grid_size

    @property
    def crop_size(self) -> int:
        """Side of the training crops the method expects: G * (P + g)."""
        return self.encoder.grid_size * (self.encoder.patch_size + self.patch_gap)

    def sample_views(self, batch_size: int, generator: torch.Generator) -> ViewBatch:
        """Draw the views of ``batch_size`` images (on the CPU) from ``generator``.

        The default: a uniformly random visible/hidden split of ``num_vis`` visible patches and,
        with a gap, one random patch offset per cell (:func:`~latentmim.masking.views.sample_views`).
        """
        return sample_views(batch_size, self.grid_size, self.num_vis, self.patch_gap, generator)

    def views_for(self, imgs: Tensor, views: ViewBatch | None) -> ViewBatch:
        """``views`` on the images' device, drawn from the method's own generator when None."""
        if views is None:
            if self._generator is None:
                self._generator = torch.Generator().manual_seed(self.seed)
            views = self.sample_views(imgs.shape[0], self._generator)
        return views.to(imgs.device)

    def momentum_at(self, start: float, progress: float) -> float:
        """The EMA momentum at ``progress`` (fraction of the run) of a schedule starting at ``start``.

        The default is the library's cosine ramp to 1 (:func:`~latentmim.methods.ema.ema_momentum`);
        a method whose paper prescribes another shape overrides it (I-JEPA: linear).
        """
        return ema_momentum(start, progress)

    def set_progress(self, progress: float) -> None:
        """Update schedules kept by the method; ``progress`` is the fraction of the run done.

        The default has none. Called before every micro-batch; must be a pure function of
        ``progress`` so that a resumed run needs no replay.
        """

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step ``t <- m*t + (1-m)*o`` of the target network; the default has none."""

    def forward(self, imgs: Tensor, views: ViewBatch | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """One training forward.

        Args:
            imgs: (B, C, S, S) training crops, S = :attr:`crop_size`, normalised like the data.
            views: the batch's views from :meth:`sample_views`; drawn here when None.

        Returns:
            (loss, metrics): a scalar loss with gradient, and detached scalar metrics.
        """
        raise NotImplementedError


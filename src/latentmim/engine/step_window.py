"""The micro-batches between two host syncs of the training loop.

A training step leaves its loss and metrics on the device; the loop collects them here and brings
them to the host in one transfer on the print interval (and before every save), so no step waits
for the device (:meth:`latentmim.engine.pretrain.Pretrainer._flush`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


class StepWindow:
    """The micro-batches since the last flush: their device-side results and the host-side counts."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.steps: list[int] = []
        self.results: list[dict[str, Any]] = []
        self.skipped = 0  # unreadable images substituted since the last flush (this rank)
        self.images_total = 0  # images of the epoch so far, all ranks
        self.images_since_start = 0

    def add(self, step: int, result: dict[str, Any], skipped: int, images: int) -> None:
        self.steps.append(step)
        self.results.append(result)
        self.skipped += skipped
        self.images_total += images
        self.images_since_start += images

    def take(self) -> tuple[list[int], list[dict[str, Any]], int]:
        """The steps, their results and the skipped images since the last take; then empty."""
        taken = self.steps, self.results, self.skipped
        self.steps, self.results, self.skipped = [], [], 0
        return taken

    def rate(self) -> float:
        """Images per second since the epoch (or the resumed part of it) started."""
        return self.images_since_start / max(time.time() - self.start, 1e-9)


@dataclass
class Flushed:
    collapsed: bool  # the collapse guard fired and collapse.stop is set
    stop: bool  # some process was asked to stop (SIGTERM, SIGUSR1/2)

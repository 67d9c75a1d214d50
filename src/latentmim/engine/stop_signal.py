"""Signals that ask a run to stop cleanly: a checkpoint at the next optimizer step, then exit."""

from __future__ import annotations

import signal
from typing import Any


class StopSignal:
    """SIGTERM/SIGUSR1/SIGUSR2 (kill, Slurm/submitit preemption or time limit) -> checkpoint at
    the next optimizer step; ``signum`` tells the caller which (submitit requeues on SIGUSR2)."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

"""Progress for people and for log files.

On a terminal, tqdm bars update in place. Anywhere else (Slurm, nohup, CI) those carriage-return
updates pile up into megabytes, so bars are off and long loops print one plain line every
``log.print_freq`` steps instead: step, img/s, loss, lr, similarities, ETA.
"""

from __future__ import annotations

import sys
from typing import Any


def live_bars(progress: bool = True) -> bool:
    """True when progress is wanted and stderr is a terminal (bars update in place there)."""
    return progress and sys.stderr.isatty()


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def plain_line(epoch: int, epochs: int, batch: int, batches: int, rec: dict[str, Any], eta_s: float) -> str:
    """One log-file progress line, e.g. ``epoch 2/10 step 140/312 | 155.7 img/s | loss 0.7348 | ...``."""
    parts = [f"epoch {epoch}/{epochs} step {batch}/{batches}", f"{rec['img_per_s']:.1f} img/s",
             f"loss {rec['loss']:.4f}", f"lr {rec['lr']:.2e}"]
    parts += [f"S({k[8:]}) {rec[k]:.2f}" for k in ("avg_sim_pred", "avg_sim_vis", "avg_sim_trg") if k in rec]
    parts.append(f"ETA {_duration(eta_s)}")
    return " | ".join(parts)

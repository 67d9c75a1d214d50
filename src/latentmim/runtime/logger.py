"""Where a run's numbers go: JSONL (the record), TensorBoard, and PNG curves.

TensorBoard and matplotlib are optional (``pip install 'latentmim[tensorboard]'`` /
``'latentmim[viz]'``). ``log.tensorboard`` and ``log.curves`` are on by default, so without the
package the logger prints one notice and keeps the JSONL record; a run that asks for them on its
command line fails before it starts instead (:func:`latentmim.cli.pretrain.check_logging`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from latentmim.config.extras import available, install_hint

CURVES = (("loss", "loss"), ("lr", "learning rate"), ("avg_sim_pred", "S(pred)"),
          ("avg_sim_vis", "S(visible)"), ("avg_sim_trg", "S(targets)"))


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only; no display on servers).

    Imported on first use: matplotlib is an optional dependency and slow to import.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def notice(text: str) -> None:
    """One line on stderr about something left out, e.g. an optional package that is missing."""
    print(f"latentmim: note: {text}", file=sys.stderr)


class MetricsLogger:
    """Appends step records to ``metrics.jsonl`` and eval records to ``eval.jsonl``.

    On resume the records after the resumed step are dropped, so a run that was killed after
    logging but before checkpointing does not leave duplicated or diverging points.

    Args:
        run_dir: the run's output folder.
        resume_step: optimizer step the run resumes from (0 for a new run).
        tensorboard: also write TensorBoard events (without the tensorboard package: a notice).
    """

    def __init__(self, run_dir: str | Path, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.train_path = self.run_dir / "metrics.jsonl"
        self.eval_path = self.run_dir / "eval.jsonl"
        self.history = self._truncate(self.train_path, resume_step)
        self.evals = self._truncate(self.eval_path, resume_step)
        self.tb = None
        self._can_plot = True  # False once a missing matplotlib has been noticed
        if tensorboard and not available("tensorboard"):
            notice(f"{install_hint('tensorboard', 'tensorboard', 'log.tensorboard')} "
                   "(no TensorBoard events; log.tensorboard=false silences this)")
        elif tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=resume_step or None)

    @staticmethod
    def _truncate(path: Path, resume_step: int) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a half-written last line from a crash
                continue
            if rec.get("step", 0) <= resume_step:
                records.append(rec)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        tmp.replace(path)
        return records

    def log(self, record: dict[str, Any], kind: str = "train") -> None:
        """Append one record (must contain ``step``)."""
        path, store = (self.train_path, self.history) if kind == "train" else (self.eval_path, self.evals)
        store.append(record)
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(f"{kind}/{key}", value, record["step"])

    def plot_curves(self) -> Path | None:
        """Save ``curves.png``: loss, lr, the three similarities, and NN accuracy if any.

        Without matplotlib: one notice (the first time) and no file.
        """
        if not self.history or not self._can_plot:
            return None
        if not available("matplotlib"):
            self._can_plot = False
            notice(f"{install_hint('matplotlib', 'viz', 'log.curves')} "
                   "(no curves.png; log.curves=false silences this)")
            return None
        plt = pyplot()
        panels = [(k, t) for k, t in CURVES if any(k in r for r in self.history)]
        extra = 1 if self.evals else 0
        fig, axes = plt.subplots(1, len(panels) + extra, figsize=(3.2 * (len(panels) + extra), 3))
        axes = list(axes) if hasattr(axes, "__len__") else [axes]
        for ax, (key, title) in zip(axes, panels, strict=False):
            pts = [(r["epoch"], r[key]) for r in self.history if key in r]
            ax.plot(*zip(*pts, strict=False), lw=1)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            if key.startswith("avg_sim"):
                ax.set_ylim(0, 1.02)
        if extra:
            ax = axes[-1]
            for key in sorted({k for r in self.evals for k in r if k.startswith(("nn_", "knn"))}):
                pts = [(r["epoch"], r[key]) for r in self.evals if key in r]
                ax.plot(*zip(*pts, strict=False), marker="o", label=key)
            ax.set_title("NN accuracy (%)")
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        fig.tight_layout()
        out = self.run_dir / "curves.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

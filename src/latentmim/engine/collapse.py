"""The collapse guard: notice when every target (or prediction) token has become the same.

S(X), the mean pairwise cosine similarity of an image's tokens, is 1.0 when all tokens point the
same way. A latent-prediction loss is then trivially small while the encoder learns nothing (the
"naive" row of the paper's collapse table). The guard watches S(targets) and S(predictions) at
every optimizer step and reports once per quantity when it stays above a threshold for
``patience`` consecutive steps, naming the likely cause from the run's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

# Watched metrics (as returned by the models) and how the warning names them.
WATCHED = {"avg_sim_trg": "S(targets)", "avg_sim_pred": "S(pred)"}

_TARGET_MODE_CAUSES = {
    "naive": "target_mode=naive lets the targets follow the online encoder with gradients flowing "
    "through them, so mapping every patch to one latent is a perfect solution (use target_mode=ema)",
    "independent": "target_mode=independent trains the target encoder by gradient jointly with the "
    "online one, so both can agree on one latent for every patch (use target_mode=ema)",
    "stopgrad": "target_mode=stopgrad shares weights without momentum: the targets move with every "
    "update and drift towards a constant (use target_mode=ema)",
}


def likely_cause(method: str, target_mode: str, loss: str, avg_sim_coeff: float, key: str) -> str:
    """A one-sentence diagnosis of a collapse, from plain run settings.

    Args:
        method: lmim | mae | pcae | data2vec.
        target_mode: Latent MIM's target mode.
        loss: Latent MIM's loss name.
        avg_sim_coeff: weight of the similarity regulariser.
        key: which similarity collapsed (``avg_sim_trg`` or ``avg_sim_pred``).
    """
    if method == "lmim" and target_mode in _TARGET_MODE_CAUSES:
        return _TARGET_MODE_CAUSES[target_mode]
    if method == "lmim" and loss in ("mse", "l1", "huber", "norm_l2") and key == "avg_sim_pred":
        return (f"loss={loss} is minimised by predicting the average latent for every patch; "
                "patch discrimination (loss=infonce_patches) penalises identical predictions")
    if method == "lmim" and avg_sim_coeff == 0:
        return ("the momentum target drifted towards a constant (target_mom too low or lr too high); "
                "avg_sim_coeff=0.1 pulls S towards its goal")
    if method in ("pcae", "data2vec"):
        return "the momentum teacher drifted towards a constant: lower the lr or raise its target momentum"
    return "the learning rate may be too high for this model and batch size"


@dataclass(frozen=True)
class CollapseEvent:
    """One collapse report.

    Attributes:
        key: the watched metric (``avg_sim_trg`` or ``avg_sim_pred``).
        value: its value at the step the guard fired.
        steps: consecutive optimizer steps it had been above the threshold.
        step: optimizer step at which the guard fired.
        message: the warning, one paragraph.
    """

    key: str
    value: float
    steps: int
    step: int
    message: str

    def as_record(self) -> dict[str, float | int | str]:
        return {"key": self.key, "value": self.value, "steps": self.steps, "step": self.step, "message": self.message}


class CollapseGuard:
    """Counts consecutive optimizer steps with S above ``threshold``, per watched metric.

    Args:
        threshold: S above this counts as collapsed (default 0.95).
        patience: consecutive steps above the threshold before an event (>= 1).
        causes: per watched key, the sentence naming the likely cause (see :func:`likely_cause`).
    """

    def __init__(self, threshold: float = 0.95, patience: int = 200, causes: dict[str, str] | None = None) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.threshold = threshold
        self.patience = patience
        self.causes = causes or {}
        self.counts = dict.fromkeys(WATCHED, 0)
        self.fired: set[str] = set()

    def update(self, step: int, metrics: dict[str, object]) -> list[CollapseEvent]:
        """Feed one optimizer step's metrics; returns the events that fire now (each key once).

        Args:
            step: optimizer step (for the report).
            metrics: the step's scalars; keys not in :data:`WATCHED` are ignored, missing ones
                (MAE has no latent targets) are never counted.
        """
        events = []
        for key, name in WATCHED.items():
            if key not in metrics:
                continue
            value = float(metrics[key])  # type: ignore[arg-type]
            self.counts[key] = self.counts[key] + 1 if value > self.threshold else 0
            if self.counts[key] >= self.patience and key not in self.fired:
                self.fired.add(key)
                cause = self.causes.get(key, "")
                message = (
                    f"COLLAPSE WARNING at step {step}: {name} = {value:.3f} has stayed above "
                    f"{self.threshold} for {self.counts[key]} consecutive steps: the "
                    f"{'targets' if key == 'avg_sim_trg' else 'predictions'} of an image are all "
                    f"nearly the same vector, so the loss no longer teaches the encoder anything."
                    + (f" Likely cause: {cause}." if cause else "")
                )
                events.append(CollapseEvent(key, value, self.counts[key], step, message))
        return events

"""Errors of a training run that are not user mistakes."""

from __future__ import annotations


class NonFiniteLoss(RuntimeError):
    """The loss or the gradients became NaN/inf; the last good checkpoint is left untouched."""

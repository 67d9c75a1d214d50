"""A training step never reads a value back from the device: on a GPU every such read waits for
the queued kernels. The step's numbers reach the host in batches, on the print interval."""

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import Pretrainer


def _forbid_host_reads(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("a training step read a tensor's value back to the host")

    for name in ("item", "__float__", "__int__", "__bool__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


@pytest.mark.parametrize("extra", [[], ["method=pcae", "pcae.random_drop=true", "pcae.drop_stages=2"],
                                   ["clip_grad=1.0", "accum_iter=2"]])
def test_a_training_step_makes_no_host_read(tiny, extra, monkeypatch):
    trainer = Pretrainer(compose_config([*tiny, *extra]))
    imgs = torch.randn(8, 3, 24, 24)
    labels = torch.zeros(8, dtype=torch.long)
    trainer.train_step(imgs, 0, 0.0, labels)  # first use: one-time host state (PCAE's draw count)
    _forbid_host_reads(monkeypatch)
    outputs = [trainer.train_step(imgs, step, step / 6, labels) for step in range(1, 5)]
    monkeypatch.undo()
    assert all(isinstance(out["loss"], torch.Tensor) and torch.isfinite(out["loss"]) for out in outputs)

"""Bugs of the CUDA path that a CPU can show: RNG states on resume, DDP arguments, fp32 islands.

No GPU runs here. Each test fakes the one thing a CPU lacks (a CUDA generator, an old torch's
DDP signature, a non-CPU checkpoint location) and checks what the code hands to torch.
"""

import inspect

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import Pretrainer, pretrain
from latentmim.losses.patch_disc import patch_disc_loss
from latentmim.methods.conmim import denoising_contrast_loss
from latentmim.models.decoder import cue_weights
from latentmim.runtime import checkpoint as ckpt_module
from latentmim.runtime import parallel as parallel_module
from latentmim.runtime.distributed import DistEnv


def test_resume_hands_torch_a_cpu_rng_state_whatever_the_training_device(tiny, monkeypatch):
    cfg = compose_config([*tiny, "epochs=1", "job_name=r"])
    pretrain(cfg)
    trainer = Pretrainer(compose_config([*tiny, "epochs=1", "job_name=r", "resume=True"]))
    trainer.device = torch.device("meta")  # stands for a GPU: anything but the CPU
    seen = []
    monkeypatch.setattr(torch, "set_rng_state", lambda state: seen.append(state.device))
    trainer.load(trainer.run_dir / "checkpoint_latest.pth")  # loads to the CPU, places parts itself
    assert seen == [torch.device("cpu")]


class FakeCuda:
    """The few torch.cuda RNG calls, recording which device they are asked about."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def get_rng_state(self, device="cuda"):
        self.calls.append(("get", torch.device(device)))
        return torch.zeros(16, dtype=torch.uint8)

    def set_rng_state(self, state, device="cuda"):
        assert state.device.type == "cpu"
        self.calls.append(("set", torch.device(device)))

    def get_rng_state_all(self):
        raise AssertionError("every visible GPU's state was read: a resume on fewer GPUs would crash")

    def set_rng_state_all(self, states):
        raise AssertionError("every visible GPU's state was restored")


def test_a_checkpoint_holds_and_restores_the_runs_own_gpu_state_only(monkeypatch):
    fake = FakeCuda()
    for name in ("get_rng_state", "set_rng_state", "get_rng_state_all", "set_rng_state_all"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "set_rng_state", lambda state: None)
    device = torch.device("cuda", 3)  # env.device=cuda:3, on a machine with 8 (or 4) GPUs
    state = ckpt_module.rng_state(device)
    ckpt_module.set_rng_state(state, device)
    assert fake.calls == [("get", device), ("set", device)]


def test_ddp_is_built_with_arguments_every_supported_torch_has(monkeypatch):
    # torch 2.6's DistributedDataParallel signature: newer keywords (forward_sync_buffers) fail there
    old = ("module", "device_ids", "output_device", "dim", "broadcast_buffers", "process_group",
           "bucket_cap_mb", "find_unused_parameters", "check_reduction", "gradient_as_bucket_view",
           "static_graph", "delay_all_reduce_named_params", "param_to_hook_all_reduce", "mixed_precision",
           "device_mesh")
    built = {}

    class OldDDP(torch.nn.Module):
        def __init__(self, module, **kwargs):
            super().__init__()
            unknown = sorted(set(kwargs) - set(old))
            assert not unknown, f"DDP arguments that torch 2.6 does not take: {unknown}"
            built.update(kwargs)

    monkeypatch.setattr(parallel_module, "DistributedDataParallel", OldDDP)
    parallel_module.ParallelModel(torch.nn.Linear(2, 2), DistEnv(0, 2, 0, "gloo"), torch.device("cpu"))
    assert built["broadcast_buffers"] is False
    assert "broadcast_buffers" in inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters


@pytest.mark.parametrize("island", ["patch_disc", "cue_weights", "conmim_contrast"])
def test_fp32_islands_stay_fp32_under_bf16_autocast(island):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 12, 64, generator=g), torch.randn(2, 12, 64, generator=g)
    fn = {
        "patch_disc": lambda: patch_disc_loss(a, b),
        "cue_weights": lambda: cue_weights(a, b),
        "conmim_contrast": lambda: denoising_contrast_loss(a, b, torch.ones(2, 12, dtype=torch.bool)),
    }[island]
    reference = fn()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = fn()
    assert under_autocast.dtype == torch.float32
    # bf16 matmuls would be off by ~1e-2 here; an fp32 island matches fp32 to rounding
    torch.testing.assert_close(under_autocast, reference, rtol=1e-6, atol=1e-6)

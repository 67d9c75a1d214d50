"""User mistakes of the fault list: each is one line naming the key or path, exit 2, no traceback."""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from latentmim.cli.main import main
from latentmim.config.load import compose_config, config_from_checkpoint
from latentmim.engine.pretrain import pretrain


def _corrupt_safetensors(tmp: Path) -> str:
    path = tmp / "enc.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    return str(path)


def _corrupt_plan(tmp: Path) -> str:
    table = tmp / "abl" / "loss"
    table.mkdir(parents=True)
    (table / "plan.json").write_text("{ half a plan")
    return str(tmp / "abl")


CASES = [
    (["pretrain", "log.print_freq=0"], "config key 'log.print_freq'"),
    (["pretrain", "nn_val_images=1"], "config key 'nn_val_images'"),
    (["pretrain", "nn_val_images=0"], "config key 'nn_val_images'"),
    (["pretrain", "nn_train_images=0"], "config key 'nn_train_images'"),
    (["pretrain", "clip_grad=-1"], "config key 'clip_grad'"),
    (["pretrain", "job_name="], "config key 'job_name'"),
    (["pretrain", "job_name=../x"], "config key 'job_name'"),
    (["eval", "knn", "checkpoint=SAFETENSORS"], "enc.safetensors"),
    (["ablate", "loss", "model=tiny", "dataset=synthetic", "epochs=1", "output_dir=PLAN"], "plan.json"),
]


@pytest.mark.parametrize("args,needle", CASES, ids=[" ".join(a[:3]) for a, _ in CASES])
def test_mistake_is_one_line_exit_2(args, needle, tiny, tmp_path, capsys):
    subs = {"SAFETENSORS": lambda: _corrupt_safetensors(tmp_path), "PLAN": lambda: _corrupt_plan(tmp_path)}
    args = [next((a.replace(k, f()) for k, f in subs.items() if k in a), a) for a in args]
    if args[0] == "pretrain":
        args = ["pretrain", *tiny, *args[1:]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ngpu_zero_means_one_cpu_process(tiny):
    cfg = compose_config([*tiny, "env.ngpu=0"])
    assert cfg.env.ngpu == 1 and cfg.env.device == "cpu"


def test_checkpoint_config_is_read_without_interpolation(tiny, monkeypatch):
    # a crafted checkpoint must not read the environment through OmegaConf's resolvers
    monkeypatch.setenv("LATENTMIM_SECRET", "hunter2")
    saved = OmegaConf.to_container(OmegaConf.structured(compose_config(tiny)))
    saved["dataset"] = "synthetic"
    saved["log"]["wandb_entity"] = "${oc.env:LATENTMIM_SECRET}"
    cfg = config_from_checkpoint(saved)
    assert cfg.log.wandb_entity == "${oc.env:LATENTMIM_SECRET}"  # the text itself, not the secret


def test_resume_with_changed_settings_is_refused_unless_allowed(tiny, tmp_path, capsys):
    base = [*tiny, "job_name=rc", "epochs=2", "ckpt_steps=1"]
    assert pretrain(compose_config(base), stop_at_step=7)["status"] == "interrupted"
    run = tmp_path / "rc"
    original = (run / "config.yaml").read_text()
    latest = (run / "checkpoint_latest.pth").read_bytes()
    assert main(["pretrain", *base, "resume=True", "batch_size=4", "lr=2e-3"]) == 2
    err = capsys.readouterr().err
    assert "batch_size '8 x 1 processes' -> '4 x 1 processes'" in err and "lr 0.001 -> 0.002" in err and "resume_allow=[batch_size,lr]" in err
    assert len(err.strip().splitlines()) == 1
    assert (run / "checkpoint_latest.pth").read_bytes() == latest  # nothing was touched
    # runtime keys may change freely; an allowed change is logged and config.yaml keeps the original
    assert main(["pretrain", *base, "resume=True", "lr=2e-3", "resume_allow=[lr]", "eval_freq=2"]) == 0
    assert (run / "config.yaml").read_text() == original
    (change,) = [json.loads(line) for line in (run / "config_changes.jsonl").read_text().splitlines()]
    assert change["changed"] == {"lr": [0.001, 0.002]}
    assert torch.load(run / "checkpoint_latest.pth", weights_only=True)["epoch"] == 2

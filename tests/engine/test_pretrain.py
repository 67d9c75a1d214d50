"""Few-step pre-training runs on real data pipelines, and resume = uninterrupted."""

import json
import os
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file

from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.runtime.checkpoint import load_checkpoint
from latentmim.training.errors import NonFiniteLoss

FMNIST = "/usr/share/datasets/fashion-mnist"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_few_step_pretraining_on_synthetic_writes_a_complete_run(tiny, tmp_path):
    cfg = compose_config([*tiny, "log.tensorboard=true", "baselines=true", "log.print_freq=1"])
    results = pretrain(cfg)
    run = Path(cfg.run_dir)
    for name in ("config.yaml", "metrics.jsonl", "eval.jsonl", "curves.png", "results.json", "results.md",
                 "checkpoint_latest.pth", "checkpoint_0001.pth", "checkpoint_0002.pth", "encoder.safetensors"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    steps = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in steps] == list(range(1, 13))  # 48 images / batch 8 = 6 steps x 2 epochs
    assert all(0 <= r[k] <= 1 for r in steps for k in ("avg_sim_pred", "avg_sim_vis", "avg_sim_trg"))
    # the lr follows warmup (1 epoch) then cosine to min_lr_frac * lr
    assert steps[0]["lr"] == pytest.approx(0.25e-3) and steps[5]["lr"] == pytest.approx(0.25e-3 + 0.75e-3 * 5 / 6)
    assert set(results) >= {"trained", "random_init", "raw_pixels", "img_per_s"}
    assert 0 <= results["trained"]["nn_loo"] <= 100
    # the exported encoder loads in timm with strict=True
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=16, patch_size=4,
                              embed_dim=32, depth=2, num_heads=2)
    model.load_state_dict(load_file(run / "encoder.safetensors"), strict=True)
    ckpt = load_checkpoint(run / "checkpoint_latest.pth")
    assert ckpt["epoch"] == 2 and ckpt["batch"] == 0


@pytest.mark.skipif(not os.path.isdir(FMNIST), reason="needs Debian's dataset-fashion-mnist")
def test_few_step_pretraining_on_fashion_mnist_grayscale(tiny):
    # 28 px grayscale: 7x7 grid of 4-px patches; 35-px train crops with gap 1
    cfg = compose_config([*tiny, "dataset=fashion_mnist", "grid_size=7", "patch_gap=1", "num_vis=5",
                          "epochs=1", "warmup_epochs=0", "nn_train_images=200", "nn_val_images=100"])
    cfg.synthetic.num_train = 0  # not used by fashion_mnist
    from latentmim.engine.pretrain import Pretrainer

    trainer = Pretrainer(cfg)
    assert trainer.data.info.in_chans == 1 and trainer.model.encoder.in_chans == 1
    trainer.batches_per_epoch = 4  # a few steps of the real 60k-image epoch
    results = trainer.run()
    steps = read_jsonl(Path(cfg.run_dir) / "metrics.jsonl")
    assert len(steps) == 1 and all(torch.isfinite(torch.tensor(r["loss"])) for r in steps)
    assert results["trained"]["nn_loo"] > 10  # 10 classes; even a random ViT beats chance on F-MNIST


def _final_state(cfg):
    return load_checkpoint(Path(cfg.run_dir) / "checkpoint_latest.pth")["model"]


@pytest.mark.parametrize("accum", [1, 2])
def test_run_killed_mid_epoch_and_resumed_equals_uninterrupted(tiny, tmp_path, accum):
    common = [*tiny, f"accum_iter={accum}", "ckpt_steps=1", "drop_path=0.1", "patch_gap=2", "log.print_freq=1"]
    ref = compose_config([*common, "job_name=ref"])
    pretrain(ref)
    cut = compose_config([*common, "job_name=cut"])
    # "kill" the run right after micro-batch 8 of 12 (epoch 2), before anything else is written
    assert pretrain(cut, stop_at_step=8)["status"] == "interrupted"
    ckpt = load_checkpoint(Path(cut.run_dir) / "checkpoint_latest.pth")
    assert ckpt["epoch"] == 1 and 0 < ckpt["batch"] < 6  # a mid-epoch checkpoint
    with pytest.raises(ConfigError, match="resume=True"):
        pretrain(cut)  # never overwrite a run silently
    pretrain(compose_config([*common, "job_name=cut", "resume=True"]))
    a, b = _final_state(ref), _final_state(cut)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit
    # every optimizer step logged exactly once, with the uninterrupted run's loss
    ref_steps = read_jsonl(Path(ref.run_dir) / "metrics.jsonl")
    cut_steps = read_jsonl(Path(cut.run_dir) / "metrics.jsonl")
    assert [r["step"] for r in cut_steps] == list(range(1, 12 // accum + 1))
    assert [r["loss"] for r in cut_steps] == [r["loss"] for r in ref_steps]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny):
    cfg = compose_config([*tiny, "epochs=2", "job_name=nan"])
    trainer_cfg = compose_config([*tiny, "epochs=2", "job_name=nan"])
    from latentmim.engine.pretrain import Pretrainer

    first = Pretrainer(trainer_cfg)
    first.cfg.epochs = 2
    # train epoch 1 normally (stop at its last micro-batch, which writes the end-of-epoch checkpoint)
    first.batches_per_epoch = 6
    first.run(stop_at_step=6)
    latest = Path(cfg.run_dir) / "checkpoint_latest.pth"
    before = latest.read_bytes()
    # an absurd learning rate blows the weights up in one step: the loss turns non-finite
    with pytest.raises(NonFiniteLoss, match="non-finite loss"):
        pretrain(compose_config([*tiny, "epochs=2", "job_name=nan", "resume=True", "lr=1e30", "resume_allow=[lr]"]))
    assert latest.read_bytes() == before


def test_non_finite_gradients_on_the_last_step_of_an_epoch_leave_the_checkpoint_untouched(tiny):
    # A finite loss with NaN gradients (bf16/fp32 have no scaler) on the epoch's last micro-batch:
    # without the check the NaN step is applied and the end-of-epoch save writes NaN weights.
    from latentmim.engine.pretrain import Pretrainer

    cfg = compose_config([*tiny, "epochs=2", "ckpt_steps=1", "job_name=nangrad"])
    trainer = Pretrainer(cfg)
    latest = Path(cfg.run_dir) / "checkpoint_latest.pth"
    saved = []
    original_save = trainer.save

    def recording_save(name="checkpoint_latest.pth"):
        original_save(name)
        saved.append((name, (Path(cfg.run_dir) / name).read_bytes()))

    trainer.save = recording_save
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        return grad * float("nan") if calls["n"] == 6 else grad  # micro-batch 6 of 6: the epoch's last

    trainer.model.encoder.blocks[0].mlp.fc1.weight.register_hook(poison)
    with pytest.raises(NonFiniteLoss, match="non-finite weights"):
        trainer.run()
    assert [name for name, _ in saved] == ["checkpoint_latest.pth"] * 5  # mid-epoch saves after steps 1..5
    assert latest.read_bytes() == saved[-1][1]  # nothing written after the poisoned step
    state = load_checkpoint(latest)["model"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert not (Path(cfg.run_dir) / "checkpoint_0001.pth").exists()


def test_progress_off_a_terminal_is_plain_lines_not_carriage_returns(tiny, capsys):
    # Slurm / nohup / CI: no tqdm bar redraws, one readable line every log.print_freq steps
    cfg = compose_config([*tiny, "log.progress=true", "log.print_freq=2", "job_name=plain"])
    pretrain(cfg)
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    lines = [line for line in captured.out.splitlines() if line.startswith("epoch ") and "img/s" in line]
    assert [line.split(" | ")[0] for line in lines] == [f"epoch {e}/2 step {s}/6" for e in (1, 2) for s in (2, 4, 6)]
    assert all("loss " in line and "lr " in line and "S(trg) " in line and "ETA " in line for line in lines)
    assert lines[-1].endswith("ETA 0m00s")

"""User mistakes: one clear line naming the key or path, exit code 2, no traceback, no output."""

import subprocess
import sys
from pathlib import Path

import pytest

from latentmim.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["pretrain", "decoder_dpeth=3"], "unknown config key 'decoder_dpeth' (did you mean 'decoder_depth'?)"),
        (["pretrain", "env.precison=bf16"], "unknown config key 'env.precison'"),
        (["pretrain", "batch_size=abc"], "config key 'batch_size'"),
        (["pretrain", "proj.mlp_dim=1.5x"], "config key 'proj.mlp_dim'"),
        (["pretrain", "encoder=vit_giant"], "config key 'encoder'"),
        (["pretrain", "input_size=100"], "config key 'input_size': 100 does not fit grid_size x (patch_size + patch_gap)"),
        (["pretrain", "num_vis=64"], "config key 'num_vis'"),
        (["pretrain", "dataset=imagefolder", "data_path=/no/such/dir"], "/no/such/dir"),
        (["pretrain", "dataset=fashion_mnist", "data_path=/no/fmnist"], "/no/fmnist"),
        (["pretrain", "dataset=imagenet"], "data_path"),
        (["pretrain", "dataset=mnist"], "config key 'dataset'"),
        (["pretrain", "--config-name", "nope"], "nope"),
        (["pretrain", "epochs"], "expected key=value"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["knn", "checkpoint=/no/ckpt.pth"], "/no/ckpt.pth"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle, capsys, tmp_path):
    code = main([*args, f"output_dir={tmp_path}"] if args[0] == "pretrain" and "=" in args[-1] else args)
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_existing_run_is_not_overwritten_without_resume(tiny, capsys):
    assert main(["pretrain", *tiny, "epochs=1", "warmup_epochs=0"]) == 0
    capsys.readouterr()
    assert main(["pretrain", *tiny, "epochs=1", "warmup_epochs=0"]) == 2
    assert "resume=True" in capsys.readouterr().err


def test_subprocess_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "latentmim.cli.main", "pretrain", "decoder_dpeth=3"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("latentmim: error: unknown config key 'decoder_dpeth' "
                                   "(did you mean 'decoder_depth'?)")


def test_authors_launch_command_works_verbatim(tmp_path):
    """The first seed's command, word for word, reaches the data check (no such ImageNet here)."""
    cmd = ("--config-name=lmim worker=main_lmim encoder=vit_base decoder_depth=3 avg_sim_coeff=0.1 "
           "loss=infonce_patches patch_gap=4 epochs=800 warmup_epochs=40 blr=1.5e-4 min_lr_frac=0.25 "
           "weight_decay=0.05 batch_size=256 accum_iter=2 env.ngpu=8 dataset=imagenet resume=True "
           f"output_dir={tmp_path}/checkpoints data_path=/path/to/imagenet env.slurm=False env.distributed=True")
    proc = subprocess.run([sys.executable, "launcher.py", *cmd.split()], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": ".", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "/path/to/imagenet" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_knn_command_on_a_trained_checkpoint(tiny, capsys, tmp_path):
    assert main(["pretrain", *tiny, "epochs=1", "warmup_epochs=0"]) == 0
    ckpt = tmp_path / "demo" / "checkpoint_latest.pth"  # the demo config names the job
    capsys.readouterr()
    assert main(["knn", f"checkpoint={ckpt}", "k=5", "workers=0", "progress=false"]) == 0  # = eval knn
    out = capsys.readouterr().out
    assert "| features | nn_loo | knn5_top1 | knn5_top5 |" in out and str(tmp_path / "demo" / "eval_knn") in out

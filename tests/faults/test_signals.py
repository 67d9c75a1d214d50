"""SIGTERM / SIGUSR2 mid-epoch: a checkpoint at the step boundary, exit code 3, exact resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.checkpoint import load_checkpoint

RUN = ["epochs=12", "warmup_epochs=1", "eval_freq=100", "save_freq=100", "log.print_freq=1", "log.curves=false"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR2], ids=["SIGTERM", "SIGUSR2"])
def test_signal_mid_epoch_checkpoints_at_the_step_boundary_and_resumes_exactly(sig, tiny, tmp_path):
    cli = [sys.executable, "-m", "latentmim.cli.main", "pretrain", *tiny, *RUN]
    # the reference runs as a process like the signalled one (same threads, same environment)
    assert subprocess.run([*cli, "job_name=ref"], capture_output=True).returncode == 0
    ref = compose_config([*tiny, *RUN, "job_name=ref"])
    run = tmp_path / "sig"
    args = [*cli, "job_name=sig"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 9:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 3  # documented: 3 = stopped by a signal, checkpoint saved, resume=True continues
    assert "stop requested: checkpoint saved" in out
    ckpt = load_checkpoint(run / "checkpoint_latest.pth")
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert ckpt["epoch"] * 6 + ckpt["batch"] == logged[-1] < 72  # saved at the step it stopped after
    assert subprocess.run([*cli, "job_name=sig", "resume=True"], capture_output=True).returncode == 0
    a = load_checkpoint(Path(ref.run_dir) / "checkpoint_latest.pth")["model"]
    b = load_checkpoint(run / "checkpoint_latest.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

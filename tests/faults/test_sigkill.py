"""SIGKILL at random moments and inside torch.save: no corrupt checkpoint, resume = uninterrupted, bit for bit."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.runtime.checkpoint import load_checkpoint

HERE = Path(__file__).parent
# 40 epochs of 6 steps, a checkpoint after every step, the NN monitor only at the end
LONG = ["epochs=40", "warmup_epochs=4", "ckpt_steps=1", "eval_freq=100", "save_freq=100", "log.curves=false"]


def _cli(*args):
    return [sys.executable, "-m", "latentmim.cli.main", "pretrain", *args]


def _state(run: Path):
    return load_checkpoint(run / "checkpoint_latest.pth")["model"]


@pytest.mark.slow
def test_twenty_random_sigkills_then_resume_equals_the_uninterrupted_run(tiny, tmp_path):
    # the reference runs as a process like the killed ones (same threads, same environment)
    assert subprocess.run(_cli(*tiny, *LONG, "job_name=ref"), capture_output=True).returncode == 0
    ref = compose_config([*tiny, *LONG, "job_name=ref"])
    run = tmp_path / "killed"
    args = [*tiny, *LONG, "job_name=killed", "resume=True"]
    rng = random.Random(0)
    kills = corrupt = 0
    progress = []
    latest = run / "checkpoint_latest.pth"
    while kills < 20:
        proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        if rng.random() < 0.2:  # during start-up, lock, load or the first steps
            time.sleep(rng.uniform(0.2, 2.5))
        else:  # after 1-8 more checkpoints, a random instant later: mostly inside a step or a save
            stamp, seen, wanted = (latest.stat().st_mtime_ns if latest.exists() else 0), 0, rng.randint(1, 8)
            while seen < wanted and proc.poll() is None:
                now = latest.stat().st_mtime_ns if latest.exists() else 0
                seen, stamp = seen + (now != stamp), now
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is not None:
            pytest.fail(f"the run finished after {kills} kills; make it longer")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        if latest.exists():
            try:
                ckpt = load_checkpoint(latest)
                progress.append(ckpt["epoch"] * 6 + ckpt["batch"])
            except Exception:  # noqa: BLE001 - any failure to load is a corrupt checkpoint
                corrupt += 1
    assert subprocess.run(_cli(*args), capture_output=True).returncode == 0
    assert corrupt == 0 and kills == 20
    assert progress == sorted(progress) and progress[-1] > 0  # every restart went on from the last save
    a, b = _state(Path(ref.run_dir)), _state(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list(run.glob(".*.tmp"))  # stale temporaries of killed saves were cleared


@pytest.mark.slow
def test_kill_inside_torch_save_keeps_the_previous_checkpoint(tiny, tmp_path):
    run = tmp_path / "insave"
    ready = tmp_path / "ready"
    args = [*tiny, "epochs=2", "ckpt_steps=1", "job_name=insave"]
    proc = subprocess.Popen([sys.executable, str(HERE / "kill_inside_save.py"), str(ready), "4", "pretrain", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not ready.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    before = (run / "checkpoint_latest.pth").read_bytes()  # the 3rd save, complete
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(run.glob(".checkpoint_latest.pth.*.tmp"))) == 1  # the torn write is only a temp file
    assert (run / "checkpoint_latest.pth").read_bytes() == before
    assert load_checkpoint(run / "checkpoint_latest.pth")["batch"] == 3
    out = subprocess.run(_cli(*args, "resume=True"), capture_output=True, text=True)
    assert out.returncode == 0 and "removed .checkpoint_latest.pth." in out.stdout
    assert not list(run.glob(".*.tmp"))

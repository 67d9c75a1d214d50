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
from latentmim.runtime.checkpoint import load_checkpoint

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


def _rank_pids(launcher: int, run: Path) -> dict[int, int]:
    """{rank: pid} of the 2 training processes a local launcher spawned.

    The launcher's children that run multiprocessing's spawn_main are the ranks (the resource
    tracker is not); rank 0 is the one holding the run folder's lock (it writes its pid there).
    """
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if parent == launcher and b"spawn_main" in cmd:
            children.append(int(stat.parent.name))
    holder = int((run / ".lock").read_text().split()[0])
    assert holder in children and len(children) == 2, (children, holder)
    return {0: holder, 1: next(c for c in children if c != holder)}


@pytest.mark.slow
def test_a_signal_to_one_of_two_gloo_ranks_stops_both_at_the_same_step(tiny, tmp_path):
    dist = ["env.distributed=true", "env.ngpu=2", "env.device=cpu", "env.threads=1", "batch_size=4"]
    cli = [sys.executable, "-m", "latentmim.cli.main", "pretrain", *tiny, *RUN, *dist]
    run = tmp_path / "sig"
    proc = subprocess.Popen([*cli, "job_name=sig"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 9:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    ranks = _rank_pids(proc.pid, run)
    assert set(ranks) == {0, 1}
    os.kill(ranks[1], signal.SIGTERM)  # rank 1 only: rank 0 has to hear of it through the step's all-reduce
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err[-2000:]
    assert "Traceback" not in out + err
    ckpt = load_checkpoint(run / "checkpoint_latest.pth")
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert ckpt["epoch"] * 6 + ckpt["batch"] == logged[-1] < 72  # one checkpoint at the step both stopped after
    # the resumed 2-process run equals an uninterrupted 2-process run
    assert subprocess.run([*cli, "job_name=sig", "resume=True"], capture_output=True).returncode == 0
    assert subprocess.run([*cli, "job_name=ref"], capture_output=True).returncode == 0
    a = load_checkpoint(tmp_path / "ref" / "checkpoint_latest.pth")["model"]
    b = load_checkpoint(run / "checkpoint_latest.pth")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_rank_killed_under_the_local_launcher_is_one_line_not_a_child_failed_dump(tiny, tmp_path):
    dist = ["env.distributed=true", "env.ngpu=2", "env.device=cpu", "env.threads=1", "batch_size=4"]
    cli = [sys.executable, "-m", "latentmim.cli.main", "pretrain", *tiny, *RUN, *dist, "job_name=kill"]
    run = tmp_path / "kill"
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not (run / "metrics.jsonl").exists() or len((run / "metrics.jsonl").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.kill(_rank_pids(proc.pid, run)[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    ours = [line for line in err.splitlines() if line.startswith("latentmim: error:")]
    assert len(ours) == 1 and "process 1 of 2" in ours[0] and "SIGKILL" in ours[0], err[-3000:]
    assert "Traceback" not in err and "ChildFailedError" not in err

"""Slurm submission through submitit, exercised with its LocalExecutor (no Slurm here)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.engine import slurm
from latentmim.engine.pretrain import pretrain
from latentmim.engine.slurm import (
    STATE_FILE,
    SlurmWorker,
    job_state,
    own_run,
    read_state,
    submit,
    update_state,
)
from latentmim.runtime.checkpoint import load_checkpoint

# 60 steps of one epoch: long enough to be preempted in the middle.
RUN = [*TINY, "epochs=1", "warmup_epochs=0", "synthetic.num_train=480", "log.print_freq=1", "env.threads=1"]


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM], ids=["SIGUSR2", "SIGTERM"])
def test_preempted_job_checkpoints_mid_epoch_requeues_and_resumes(tmp_path, sig):
    cfg = compose_config([*RUN, f"output_dir={tmp_path}", "job_name=job", "env.slurm=True", "env.cluster=local"])
    run = Path(cfg.run_dir)
    first = submit(cfg)
    assert first.submitted and first.job_id
    # while it is queued or running, the same launch command submits nothing
    again = submit(cfg)
    assert not again.submitted and again.job_id == first.job_id and "RUNNING" in again.message
    # preempt it (submitit's signal, SIGUSR2) once a few optimizer steps are logged
    pid = _wait(lambda: read_state(run).get("state") == "running" and len(_steps(run)) >= 3
                and read_state(run)["pid"], 180, "the job to train")
    os.kill(pid, sig)  # USR2: submitit's --signal; TERM: Slurm's preemption without it
    _wait(lambda: (run / "results.json").is_file(), 180, "the requeued job to finish")
    _wait(lambda: read_state(run).get("state") == "finished", 30, "the job record")
    record = read_state(run)
    assert record["requeues"] == 1 and record["pid"] != pid  # a new process finished the run
    logs = "".join(p.read_text() for p in (run / "submitit").glob("*_log.out"))
    resumed = [line for line in logs.splitlines() if line.startswith("resumed from")]
    assert len(resumed) == 1 and "epoch 0, batch" in resumed[0]
    batch = int(resumed[0].rsplit(" ", 1)[1])
    assert 3 <= batch < 60  # the checkpoint was written mid-epoch, at the signalled step
    steps = _steps(run)
    assert steps == list(range(1, 61))  # every step once: nothing lost, nothing repeated
    # ... and the result is the uninterrupted run's
    ref = compose_config([*RUN, f"output_dir={tmp_path}", "job_name=ref"])
    pretrain(ref)
    a = load_checkpoint(run / "checkpoint_latest.pth")["model"]
    b = load_checkpoint(Path(ref.run_dir) / "checkpoint_latest.pth")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # a finished run is never submitted again
    last = submit(cfg)
    assert not last.submitted and "already finished" in last.message


def test_job_records_of_dead_or_missing_jobs_do_not_block_a_submission(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert job_state({"job_id": str(dead.pid), "cluster": "local"}) == "GONE"
    assert job_state({"job_id": str(os.getpid()), "cluster": "local"}) == "RUNNING"
    assert job_state({}) == "GONE" and read_state(tmp_path) == {}
    (tmp_path / STATE_FILE).write_text("{not json")
    assert read_state(tmp_path) == {}


def test_slurm_without_slurm_is_one_line_and_submits_nothing(tmp_path, capsys):
    assert main(["pretrain", *TINY, f"output_dir={tmp_path}", "env.slurm=True"]) == 2
    err = capsys.readouterr().err
    assert "config key 'env.slurm'" in err and "sbatch" in err and len(err.strip().splitlines()) == 1
    assert main(["pretrain", *TINY, f"output_dir={tmp_path}", "env.slurm=True", "env.cluster=lsf"]) == 2
    assert "env.cluster" in capsys.readouterr().err
    assert not (tmp_path / "demo" / STATE_FILE).exists()


def test_authors_slurm_launch_command_works_as_written(tmp_path, capsys):
    """The first seed's command with env.slurm=True, word for word: stops at the data check.

    (The launcher.py shim itself is run as a subprocess in tests/cli/test_cli_errors.py.)"""
    cmd = ("--config-name=lmim worker=main_lmim encoder=vit_base decoder_depth=3 avg_sim_coeff=0.1 "
           "loss=infonce_patches patch_gap=4 epochs=800 warmup_epochs=40 blr=1.5e-4 min_lr_frac=0.25 "
           "weight_decay=0.05 batch_size=256 accum_iter=2 env.ngpu=8 dataset=imagenet resume=True "
           f"output_dir={tmp_path}/checkpoints data_path=/path/to/imagenet env.slurm=True env.distributed=True")
    assert main(["pretrain", *cmd.split()]) == 2
    err = capsys.readouterr().err
    assert "/path/to/imagenet" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def _local_job_env(monkeypatch, job_id: str, folder: Path) -> None:
    """The environment submitit's LocalExecutor gives a job's task (what JobEnvironment reads)."""
    for key, value in {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": job_id, "SUBMITIT_LOCAL_NTASKS": "1",
                       "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_LOCAL_NODEID": "0",
                       "SUBMITIT_LOCAL_GLOBALID": "0", "SUBMITIT_LOCAL_LOCALID": "0",
                       "SUBMITIT_FOLDER": str(folder)}.items():
        monkeypatch.setenv(key, value)


def test_a_job_requeued_by_slurm_itself_resumes_its_own_run(tmp_path, monkeypatch):
    # Slurm's own requeue (--requeue, PreemptMode=REQUEUE, node failure) runs the submitted work
    # again, with resume=False as submitted; the folder holds that job's checkpoint.
    cfg = compose_config([*RUN, f"output_dir={tmp_path}", "job_name=job", "ckpt_steps=5", "env.slurm=True",
                          "env.cluster=local"])
    run = Path(cfg.run_dir)
    # the first start dies mid-epoch (a node failure), after a checkpoint
    first = compose_config([*RUN, f"output_dir={tmp_path}", "job_name=job", "ckpt_steps=5"])
    assert pretrain(first, stop_at_step=20)["status"] == "interrupted"
    assert (run / "checkpoint_latest.pth").exists() and not (run / "results.json").exists()
    update_state(run, job_id="4242", cluster="local", folder=str(run / "submitit"), state="running")
    _local_job_env(monkeypatch, "4242", run / "submitit")
    result = SlurmWorker()(cfg)
    assert "trained" in result and (run / "results.json").is_file()
    assert _steps(run) == list(range(1, 61))
    # ... but a job never takes over a folder recorded for another job
    assert own_run(cfg, "9999").resume is False and own_run(cfg, "4242").resume is True


def test_unknown_state_blocks_only_just_after_submission(monkeypatch):
    import submitit

    class Job:
        def __init__(self, folder, job_id):
            self.state = "UNKNOWN"

    monkeypatch.setattr(submitit, "SlurmJob", Job)
    record = {"job_id": "7", "cluster": "slurm", "folder": "/x"}
    assert job_state({**record, "submitted": time.time() - 5}) == "UNKNOWN"  # sacct has not seen it yet
    assert job_state({**record, "submitted": time.time() - 2 * slurm.UNKNOWN_GRACE_S}) == "GONE"
    assert job_state({**record, "submitted": time.time() - 5}) in slurm.ACTIVE_STATES | {"UNKNOWN"}


def test_a_reused_pid_does_not_block_a_submission_forever():
    me = os.getpid()
    start = slurm.process_start_time(me)
    assert start is not None and start == slurm.process_start_time(me)
    assert job_state({"job_id": str(me), "cluster": "local", "controller_start": start}) == "RUNNING"
    # the recorded controller died and its pid went to another process (this one)
    assert job_state({"job_id": str(me), "cluster": "local", "controller_start": start + 1}) == "GONE"


def _hammer(run_dir: str, tag: str, n: int) -> None:
    for i in range(n):
        update_state(run_dir, **{tag: i})


def test_concurrent_state_writers_never_share_a_temp_file(tmp_path):
    # The login node and the job update the record at the same time: with one fixed temp name,
    # one writer renames the other's half-written file or finds its own gone.
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), tag, 150)) for tag in ("login", "job")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    record = json.loads((tmp_path / STATE_FILE).read_text())  # a whole, valid record
    assert "updated" in record and not list(tmp_path.glob("*.tmp"))

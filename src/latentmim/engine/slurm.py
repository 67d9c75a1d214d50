"""Slurm submission with submitit: one task per GPU, checkpoint-and-requeue near the time limit.

``latentmim pretrain ... env.slurm=True`` calls :func:`submit`, which

1. skips the run if it already finished (``results.json``) or if its job is still queued or
   running (the job id is kept in ``<run_dir>/slurm_job.json``), so re-issuing a launch
   command never submits a run twice;
2. submits :class:`SlurmWorker` with ``env.world_size`` nodes x ``env.ngpu`` tasks (one process
   per GPU), ``env.slurm_partition``, ``env.slurm_timeout`` minutes, ``env.mem_gb``,
   ``env.workers`` data workers per task, ``env.nodelist`` and ``env.exclude``.

Inside the job, Slurm sends SIGUSR2 ``signal_delay_s`` before the time limit (and on
preemption). The training loop notices it, finishes the optimizer step, writes
``checkpoint_latest.pth`` and returns; :class:`SlurmWorker` then hands the signal back to
submitit, whose handler calls :meth:`SlurmWorker.checkpoint` (submitit's checkpointing
protocol: return a ``DelayedSubmission`` of the same work with ``resume=True``) and requeues
the job. The requeued job resumes at the saved step.

``env.cluster=local`` runs the same job through submitit's LocalExecutor on this machine
(background processes, same signals and requeueing): that is how the tests exercise it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig

STATE_FILE = "slurm_job.json"
SUBMITIT_DIR = "submitit"
SIGNAL_DELAY_S = 120  # checkpoint this long before the time limit (one optimizer step must fit)
# Slurm states of a job that may still run (or run again): never submit a second one then.
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                 "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}
# submitit reports UNKNOWN when the accounting database does not (yet, or any more) know the job.
# Just after a submission that is sacct lagging behind: count it as active for this long; later it
# means the job left the database, and must not block a resubmission forever.
UNKNOWN_GRACE_S = 600


@dataclass(frozen=True)
class Submission:
    """What :func:`submit` did.

    Attributes:
        submitted: a job was submitted.
        job_id: the new job's id, or the id of the job that made us skip.
        message: one line for the user.
        job: the submitit job object (None when skipped).
    """

    submitted: bool
    job_id: str | None
    message: str
    job: Any = None


# ------------------------------------------------------------------------------ job state file
def read_state(run_dir: str | Path) -> dict[str, Any]:
    """The run's job record (empty when never submitted or unreadable)."""
    path = Path(run_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def update_state(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the job record (atomic replace through a temp file of its own).

    The login node (submit) and the job (running, requeued, finished) both write this file;
    each write goes through a uniquely named temp file, so two writers never share one.
    """
    from latentmim.runtime.checkpoint import write_text_atomic

    path = Path(run_dir) / STATE_FILE
    record = {**read_state(run_dir), **fields, "updated": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=2))
    return record


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22), or None.

    A pid alone does not name a process: after the job's controller exits, the pid can be given
    to an unrelated process. Pid and start time together do.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def job_state(record: dict[str, Any]) -> str:
    """Current scheduler state of the recorded job: a Slurm state name, or FINISHED/GONE."""
    if not record.get("job_id"):
        return "GONE"
    cluster = record.get("cluster", "slurm")
    if cluster == "local":
        try:  # the LocalExecutor's job id is the pid of its controller process
            pid = int(record["job_id"])
            os.kill(pid, 0)
        except (ProcessLookupError, ValueError):
            return "GONE"
        except PermissionError:
            pass
        started = record.get("controller_start")
        if started is not None and process_start_time(pid) not in (None, started):
            return "GONE"  # the pid now belongs to another process
        return "RUNNING"
    import submitit

    state = str(submitit.SlurmJob(record["folder"], str(record["job_id"])).state).split()[0].upper()
    if state == "UNKNOWN" and time.time() - float(record.get("submitted") or 0) > UNKNOWN_GRACE_S:
        return "GONE"
    return state


# ------------------------------------------------------------------------------ submission
def _executor(cfg: PretrainConfig, folder: Path) -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "config key 'env.slurm': submitit is not installed; pip install 'latentmim[slurm]' or set env.slurm=False"
        ) from None

    env = cfg.env
    if env.cluster == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError(
            "config key 'env.slurm': no Slurm on this machine (sbatch not found); set env.cluster=local to "
            "run the job through submitit here, or env.slurm=False"
        )
    executor = submitit.AutoExecutor(folder=folder, cluster=env.cluster, slurm_max_num_timeout=100)
    params: dict[str, Any] = {
        "name": cfg.job_name,
        "timeout_min": env.slurm_timeout,
        "nodes": env.world_size,
        "tasks_per_node": env.ngpu,  # one process per GPU
        "gpus_per_node": env.ngpu if env.device != "cpu" else 0,
        "cpus_per_task": env.workers + 1,  # data workers + the training process
    }
    if env.mem_gb:
        params["mem_gb"] = env.mem_gb
    if env.cluster == "slurm":
        extra = {k: v for k, v in (("nodelist", env.nodelist), ("exclude", env.exclude)) if v}
        params.update(slurm_signal_delay_s=SIGNAL_DELAY_S, slurm_additional_parameters=extra)
        if env.slurm_partition:
            params["slurm_partition"] = env.slurm_partition
    executor.update_parameters(**params)
    return executor


def submit(cfg: PretrainConfig) -> Submission:
    """Submit the run unless it is finished or already queued/running.

    Raises:
        ConfigError: no Slurm here (``env.cluster=slurm``), or the run folder holds a run and
            ``resume`` is False.
    """
    from latentmim.engine.pretrain import LATEST

    run_dir = Path(cfg.run_dir)
    if (run_dir / "results.json").is_file():
        return Submission(False, None, f"skipped {cfg.job_name}: already finished ({run_dir / 'results.json'})")
    record = read_state(run_dir)
    state = job_state(record) if record else "GONE"
    if state in ACTIVE_STATES:
        return Submission(False, record["job_id"], f"skipped {cfg.job_name}: job {record['job_id']} is {state} "
                          f"(delete {run_dir / STATE_FILE} if that is wrong)")
    if (run_dir / LATEST).exists() and not cfg.resume:
        raise ConfigError(
            f"output_dir: '{run_dir}' already holds a run ({LATEST}); pass resume=True to continue it, "
            "or choose another job_name/output_dir"
        )
    folder = run_dir / SUBMITIT_DIR
    executor = _executor(cfg, folder)
    # Recorded before submitting: a job that starts at once may write "running" before submit()
    # returns, and adding the job id afterwards must not overwrite that.
    update_state(run_dir, job_id=None, cluster=cfg.env.cluster, folder=str(folder), state="submitted",
                 submitted=time.time(), requeues=record.get("requeues", 0))
    job = executor.submit(SlurmWorker(), cfg)
    start = process_start_time(int(job.job_id)) if cfg.env.cluster == "local" else None
    update_state(run_dir, job_id=str(job.job_id), controller_start=start)
    return Submission(True, str(job.job_id), f"submitted {cfg.job_name} as job {job.job_id} "
                      f"({cfg.env.world_size} node(s) x {cfg.env.ngpu} task(s)); logs in {folder}")


# ------------------------------------------------------------------------------ inside the job
def own_run(cfg: PretrainConfig, job_id: str) -> PretrainConfig:
    """``cfg`` with ``resume=True`` when the run folder's job record names this job.

    Slurm itself requeues a job (``--requeue``, ``PreemptMode=REQUEUE``, node failure) by running
    the submitted work again, with the config it was submitted with, often ``resume=False``. The
    folder then holds this very job's checkpoint, and refusing it ("already holds a run") would
    kill the job at every restart: a job always resumes its own run.
    """
    if cfg.resume or read_state(cfg.run_dir).get("job_id") != job_id:
        return cfg
    return dataclasses.replace(cfg, resume=True)


def preemption_signal() -> int:
    """The signal submitit handles as "checkpoint and requeue" (``SUBMITIT_PREEMPT_SIGNAL``, USR2)."""
    return int(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))


class SlurmWorker:
    """The callable submitit pickles: trains (or resumes) one run inside a job.

    ``checkpoint`` is submitit's hook for preemption and time limits: it returns the same work
    with ``resume=True``, which submitit requeues.
    """

    def __call__(self, cfg: PretrainConfig) -> dict[str, Any]:
        import submitit

        from latentmim.engine.launch import run_process
        from latentmim.runtime.distributed import export_submitit_env

        job = submitit.JobEnvironment()
        if job.num_tasks > 1:
            export_submitit_env()
        cfg = own_run(cfg, str(job.job_id))
        main = job.global_rank == 0
        if main:
            update_state(cfg.run_dir, state="running", job_id=str(job.job_id), host=socket.gethostname(),
                         pid=os.getpid(), started=time.time())
        result = run_process(cfg)
        preempt = preemption_signal()
        if result.get("status") == "interrupted" and result.get("signal") in (preempt, signal.SIGTERM):
            # The checkpoint is on disk: let submitit's handler (restored by now) requeue the job.
            # SIGTERM is how Slurm preempts without --signal (and how scancel stops a job: a
            # cancelled job cannot be requeued, so the request is then harmless).
            signal.raise_signal(preempt)
        if main:
            update_state(cfg.run_dir, state=result.get("status", "finished"), finished=time.time())
        return result

    def checkpoint(self, cfg: PretrainConfig) -> Any:
        """Called by submitit on preemption / time limit: requeue the run with ``resume=True``."""
        import submitit

        record = read_state(cfg.run_dir)
        update_state(cfg.run_dir, state="requeued", requeues=record.get("requeues", 0) + 1)
        return submitit.helpers.DelayedSubmission(SlurmWorker(), dataclasses.replace(cfg, resume=True))

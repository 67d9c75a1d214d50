"""Two runs on one folder: the second refuses with one line naming the folder and the holder's pid."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentmim.cli.main import main


def _start(tiny, job, extra=()):
    args = ["pretrain", *tiny, f"job_name={job}", "epochs=40", "ckpt_steps=1", *extra]
    return subprocess.Popen([sys.executable, "-m", "latentmim.cli.main", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _wait_for(path: Path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode() if proc.poll() else "timeout"
        time.sleep(0.05)


@pytest.mark.slow
def test_second_run_on_a_busy_folder_refuses_and_touches_nothing(tiny, tmp_path, capsys):
    proc = _start(tiny, "busy")
    run = tmp_path / "busy"
    try:
        _wait_for(run / "checkpoint_latest.pth", proc)
        for extra in ([], ["resume=True"]):
            before = {p.name: p.stat().st_size for p in run.iterdir()}
            assert main(["pretrain", *tiny, "job_name=busy", "epochs=40", *extra]) == 2
            err = capsys.readouterr().err
            assert f"'{run}' is in use by another run (pid {proc.pid})" in err
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
            after = {p.name: p.stat().st_size for p in run.iterdir()}
            assert after.get("metrics.jsonl", 0) >= before.get("metrics.jsonl", 0)  # never truncated
        # SIGKILL: the kernel drops the lock with the process; resume=True takes over the folder
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert main(["pretrain", *tiny, "job_name=busy", "epochs=40", "resume=True"]) == 0
        assert (run / "results.json").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_unwritable_output_dir_is_one_line(tiny, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["pretrain", *tiny, f"output_dir={blocker}"]) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"

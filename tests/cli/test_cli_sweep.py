"""``latentmim pretrain -m``: Hydra's basic sweeper, one run folder per point, a summary, resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from latentmim.cli.main import main
from latentmim.cli.pretrain import train_here
from latentmim.cli.sweep import run_sweep

SWEEP = ["lr=1e-3,2e-3", "num_vis=3,5"]
LABELS = ["lr=0.001,num_vis=3", "lr=0.001,num_vis=5", "lr=0.002,num_vis=3", "lr=0.002,num_vis=5"]


def test_two_by_two_sweep_writes_four_runs_and_the_summary(tiny, tmp_path, capsys):
    assert main(["pretrain", "-m", *tiny, "epochs=1", "warmup_epochs=0", "job_name=sw", *SWEEP]) == 0
    sweep = tmp_path / "sw"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == LABELS
    for label in LABELS:
        run = sweep / label
        assert (run / "results.json").is_file() and (run / "encoder.safetensors").is_file()
        saved = (run / "config.yaml").read_text()
        lr, vis = label.split(",")
        assert f"lr: {lr.split('=')[1]}" in saved and f"num_vis: {vis.split('=')[1]}" in saved
        assert "epochs: 1\n" in saved  # the unswept overrides reach every point
    rows = json.loads((sweep / "summary.json").read_text())
    assert sorted(r["point"] for r in rows) == LABELS
    for r in rows:
        res = json.loads((sweep / r["point"] / "results.json").read_text())
        assert r["nn"] == res["trained"]["nn_loo"] and r["knn"] == res["trained"]["knn20_top1"]
        assert r["status"] == "done" and r["minutes"] >= 0
    table = (sweep / "summary.md").read_text()
    assert "| lr | num_vis | nn | knn | minutes | status |" in table and len(table.splitlines()) == 2 + 2 + 4
    assert "sweep folder" in capsys.readouterr().out


def test_killed_sweep_continues_without_redoing_finished_points(tiny, tmp_path):
    args = ["pretrain", "-m", *tiny, "epochs=4", "warmup_epochs=0", "ckpt_steps=1", "job_name=sw", *SWEEP]
    sweep = tmp_path / "sw"
    proc = subprocess.Popen([sys.executable, "-m", "latentmim.cli.main", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # kill -9 once two points have finished and a third is training (it has a checkpoint, no results)
    deadline = time.time() + 240

    def done(lab):
        return (sweep / lab / "results.json").is_file()

    while not (sum(map(done, LABELS)) >= 2 and any((sweep / lab / "checkpoint_latest.pth").is_file()
                                                   and not done(lab) for lab in LABELS)):
        assert proc.poll() is None and time.time() < deadline, "sweep ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {lab: (sweep / lab / "results.json").read_bytes() for lab in LABELS
                if (sweep / lab / "results.json").is_file()}
    assert 2 <= len(finished) < 4
    ran = []

    def run_one(cfg):
        ran.append((cfg.job_name, cfg.resume))
        return train_here(cfg)

    assert run_sweep("demo", args[2:], run_one) == 0
    assert sorted(name for name, _ in ran) == [lab for lab in LABELS if lab not in finished]
    assert any(resume for _, resume in ran)  # the point killed mid-training resumed its checkpoint
    for lab, data in finished.items():
        assert (sweep / lab / "results.json").read_bytes() == data  # untouched
    rows = json.loads((sweep / "summary.json").read_text())
    assert all(r["status"] == "done" for r in rows) and len(rows) == 4
    # a third start does nothing at all
    ran.clear()
    assert run_sweep("demo", args[2:], run_one) == 0 and ran == []


def test_failed_point_is_recorded_and_the_sweep_goes_on(tiny, tmp_path):
    # lr=1e30 blows the loss up on its first steps: recorded as failed, not fatal to the sweep
    assert main(["pretrain", "-m", *tiny, "epochs=1", "warmup_epochs=0", "job_name=sw", "lr=1e30,1e-3"]) == 0
    rows = {r["point"]: r for r in json.loads((Path(tmp_path) / "sw" / "summary.json").read_text())}
    assert rows["lr=1e+30"]["status"].startswith("failed") and rows["lr=0.001"]["status"] == "done"


def test_expand_is_the_cartesian_product_in_command_line_order():
    from latentmim.cli.sweep import expand

    points, swept, fixed = expand(["lr=1e-3,2e-3", "epochs=2", "num_vis=range(3,6,2)", "+x=choice(a,b)"])
    assert swept == ["lr", "num_vis", "x"] and fixed == ["epochs=2"]
    assert points[0] == ["lr=0.001", "epochs=2", "num_vis=3", "+x=a"] and len(points) == 2 * 2 * 2
    assert points[-1] == ["lr=0.002", "epochs=2", "num_vis=5", "+x=b"]
    # quoted commas are one value; a key given twice keeps its place and its last value
    assert expand(["name='a,b'", "lr=1,2"])[0] == [["name='a,b'", "lr=1"], ["name='a,b'", "lr=2"]]
    assert expand(["lr=1", "wd=0", "lr=2,3"])[0] == [["lr=2", "wd=0"], ["lr=3", "wd=0"]]


def test_expand_mistakes_are_one_line_config_errors():
    import pytest

    from latentmim.cli.sweep import expand
    from latentmim.config.errors import ConfigError

    for overrides, needle in [(["lr"], "expected key=value"), (["lr=interval(0,1)"], "interval sweeps"),
                              (["lr=1,,2"], "sweep:"), (["job_name=a,b"], "'job_name' cannot be swept")]:
        with pytest.raises(ConfigError, match=needle):
            expand(overrides)


def test_the_sweep_uses_only_hydras_public_api():
    import ast

    import latentmim.cli.sweep as sweep

    modules = [n.module for n in ast.walk(ast.parse(Path(sweep.__file__).read_text())) if isinstance(n, ast.ImportFrom)]
    assert modules and not [m for m in modules if m and "._" in m]

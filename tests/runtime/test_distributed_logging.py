"""Who writes what: rank 0 logs (optionally to W&B too); the other ranks only keep the records."""

import importlib.util

import pytest

from latentmim.cli.main import main
from latentmim.runtime.logger import MetricsLogger
from latentmim.runtime.run_logger import MemoryLogger, build_run_logger
from latentmim.runtime.wandb_mirror import RUN_ID_FILE, run_id


def test_only_rank_zero_writes(tmp_path):
    other = build_run_logger(tmp_path, 0, tensorboard=False, main_process=False)
    assert isinstance(other, MemoryLogger)
    other.log({"step": 1, "loss": 2.0})
    other.log({"step": 1, "nn_loo": 50.0}, kind="eval")
    assert other.history == [{"step": 1, "loss": 2.0}] and other.evals == [{"step": 1, "nn_loo": 50.0}]
    assert other.plot_curves() is None and not any(tmp_path.iterdir())
    main_logger = build_run_logger(tmp_path, 0, tensorboard=False, main_process=True)
    assert isinstance(main_logger, MetricsLogger)
    main_logger.log({"step": 1, "loss": 2.0})
    assert (tmp_path / "metrics.jsonl").read_text().strip() == '{"step": 1, "loss": 2.0}'


def test_wandb_run_id_is_kept_across_resumes(tmp_path):
    assert run_id(tmp_path, "first1") == "first1"
    assert (tmp_path / RUN_ID_FILE).read_text() == "first1"
    assert run_id(tmp_path, "second") == "first1"  # a resumed / requeued run keeps its W&B run


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_wandb_without_wandb_is_one_line_before_anything_runs(tiny, tmp_path, capsys):
    assert main(["pretrain", *tiny, "log.wandb=true"]) == 2
    err = capsys.readouterr().err
    assert "config key 'log.wandb'" in err and "pip install wandb" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())

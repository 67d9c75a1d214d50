"""The random-init and raw-pixel baselines are computed once per run folder and data, then read back."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine import pretrain as pretrain_module
from latentmim.engine.baseline_cache import FILE_NAME, state_digest
from latentmim.engine.pretrain import pretrain


def _count_baseline_passes(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = pretrain_module.measure_baselines

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "measure_baselines", counting)
    return calls


def test_a_restart_without_checkpoint_reads_the_baselines_back(tiny, monkeypatch):
    calls = _count_baseline_passes(monkeypatch)
    cfg = compose_config([*tiny, "baselines=true", "epochs=1"])
    first = pretrain(cfg)
    run = Path(cfg.run_dir)
    stored = json.loads((run / FILE_NAME).read_text())
    assert stored["baselines"]["raw_pixels"] == first["raw_pixels"]
    # A run killed before its first checkpoint starts from scratch: same data, same initial weights.
    for ckpt in run.glob("checkpoint_*.pth"):
        ckpt.unlink()
    (run / "results.json").unlink()
    second = pretrain(compose_config([*tiny, "baselines=true", "epochs=1", "resume=true"]))
    assert len(calls) == 1  # computed by the first run only
    assert second["raw_pixels"] == first["raw_pixels"] and second["random_init"] == first["random_init"]


@pytest.mark.parametrize("change", ["nn_val_images=12", "env.seed=5", "knn_k=3"])
def test_a_different_data_protocol_or_initialisation_recomputes(tiny, tmp_path, monkeypatch, change):
    calls = _count_baseline_passes(monkeypatch)
    cfg = compose_config([*tiny, "baselines=true", "epochs=1"])
    pretrain(cfg)
    other = tmp_path / "other"
    shutil.copytree(cfg.run_dir, other)  # the first run's cache, in a folder the second run owns
    for ckpt in other.glob("checkpoint_*.pth"):
        ckpt.unlink()
    (other / "results.json").unlink()
    name = other.name
    pretrain(compose_config([*tiny, "baselines=true", "epochs=1", change, f"output_dir={tmp_path}", f"job_name={name}",
                             "resume_allow=[nn_val_images,env.seed,knn_k]"]))
    assert len(calls) == 2
    assert json.loads((other / FILE_NAME).read_text())["key"] != json.loads(
        (Path(cfg.run_dir) / FILE_NAME).read_text())["key"]


def test_a_corrupt_cache_is_recomputed_not_fatal(tiny, monkeypatch):
    calls = _count_baseline_passes(monkeypatch)
    cfg = compose_config([*tiny, "baselines=true", "epochs=1"])
    run = Path(cfg.run_dir)
    run.mkdir(parents=True)
    (run / FILE_NAME).write_text("{not json")
    pretrain(cfg)
    assert len(calls) == 1 and "baselines" in json.loads((run / FILE_NAME).read_text())


def test_state_digest_sees_one_changed_weight():
    a = torch.nn.Linear(3, 2)
    before = state_digest(a)
    with torch.no_grad():
        a.weight[1, 2] += 1e-6
    assert state_digest(a) != before
    assert state_digest(a) == state_digest(a)

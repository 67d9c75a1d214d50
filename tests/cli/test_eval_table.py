"""One table of evaluation suites: every suite has --help, --cfg job, completion and eval all nesting."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pytest
import yaml

from latentmim.cli.help import command_keys
from latentmim.cli.main import main
from latentmim.config.describe import all_keys
from latentmim.config.eval_load import SUITES as SUITE_CHOICES
from latentmim.config.eval_schema import AllEvalConfig, EvalCommon
from latentmim.config.load import compose_config
from latentmim.eval.suites import SUITES


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return str(trainer.run_dir / "checkpoint_latest.pth")


def test_the_table_matches_the_schemas() -> None:
    hints = typing.get_type_hints(AllEvalConfig)
    nested = {name for name, kind in hints.items() if name not in typing.get_type_hints(EvalCommon)
              and dataclasses.is_dataclass(kind)}
    assert nested == {n for n, s in SUITES.items() if s.options is not None} == set(SUITE_CHOICES) - {"auto"}
    for name, suite in SUITES.items():
        assert suite.name == name and issubclass(suite.config, EvalCommon)
        if suite.options is not None:  # eval SUITE key=... means what eval all SUITE.key=... means
            assert hints[name] is suite.options and issubclass(suite.config, suite.options)
            assert set(all_keys(suite.options)) <= set(all_keys(suite.config))
            assert {f"{name}.{k}" for k in all_keys(suite.options)} <= set(command_keys("eval", "all"))


@pytest.mark.parametrize("name", list(SUITES))
def test_every_suite_has_help_and_cfg_job(name: str, ckpt: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: latentmim eval {name} ") and SUITES[name].summary in out
    for key in all_keys(SUITES[name].config):
        assert f"\n  {key} " in out, key
    assert main(["eval", name, "--cfg", "job", f"checkpoint={ckpt}"]) == 0
    out = capsys.readouterr().out
    parsed = yaml.safe_load(out)
    assert parsed["checkpoint"] == ckpt and set(parsed) == {k.split(".")[0] for k in all_keys(SUITES[name].config)}
    if SUITES[name].options is not None:
        assert f"# resolved from checkpoint {ckpt}:" in out and "#   dataset: synthetic" in out


def test_every_suite_is_completed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert f'keys="{" ".join(SUITES)}"' in script
    for name in SUITES:
        assert f"      {name}) keys=" in script


def test_knn_is_eval_knn(ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [f"checkpoint={ckpt}", "k=3", "workers=0", "progress=false", f"output_dir={tmp_path}"]
    assert main(["eval", "knn", *args]) == 0
    first = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert main(["knn", *args]) == 0
    assert capsys.readouterr().out == first
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["scores"] == results["scores"] and "| features | nn_loo | knn3_top1 | knn3_top5 |" in first
    # the same keys, the same mistakes
    assert main(["knn", f"checkpoint={ckpt}", "knn_k=5"]) == 2
    assert "unknown config key 'knn_k'" in capsys.readouterr().err


def test_a_stored_config_never_chooses_where_to_download(ckpt: str) -> None:
    from latentmim.config.eval_schema import KnnEvalConfig
    from latentmim.eval.data import resolve_data
    from latentmim.interop.load import load_pretrained

    loaded = load_pretrained(ckpt)
    loaded.config.dataset, loaded.config.data_path, loaded.config.download = "cifar10", "/tmp/chosen", True
    read = resolve_data(KnnEvalConfig(checkpoint=ckpt), loaded)
    assert read.download is False and read.data_path == "/tmp/chosen"  # read only, never fetched
    fetch = resolve_data(KnnEvalConfig(checkpoint=ckpt, download=True), loaded)
    assert fetch.download is True and fetch.data_path is None  # the user's folder, or the registry's error
    mine = resolve_data(KnnEvalConfig(checkpoint=ckpt, download=True, data_path="/data/c10"), loaded)
    assert mine.data_path == "/data/c10"

"""Optional packages: a feature that needs a missing one says which extra brings it, in one line."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from latentmim.cli.main import main
from latentmim.config.errors import ConfigError
from latentmim.config.extras import install_hint, require
from latentmim.runtime.logger import MetricsLogger


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``without("sklearn", ...)``: those packages look uninstalled to latentmim's checks."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec

        def find_spec(name: str, package: str | None = None) -> object:
            return None if name.split(".")[0] in names else real(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import TINY
    from latentmim.config.load import compose_config
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return str(trainer.run_dir / "checkpoint_latest.pth")


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_require_names_the_package_and_the_extra(without: Callable[..., None]) -> None:
    without("sklearn")
    with pytest.raises(ConfigError) as err:
        require("sklearn", "eval", "eval fewshot")
    assert str(err.value) == "eval fewshot needs scikit-learn: pip install 'latentmim[eval]'"
    require("torch", "x", "anything")  # installed: no error
    assert install_hint("wandb", "wandb", "log.wandb") == "log.wandb needs wandb: pip install 'latentmim[wandb]'"


@pytest.mark.parametrize("args,missing,message", [
    (["eval", "fewshot", "CKPT"], ("sklearn",), "eval fewshot needs scikit-learn: pip install 'latentmim[eval]'"),
    (["eval", "segment", "CKPT"], ("scipy",), "eval segment needs SciPy: pip install 'latentmim[eval]'"),
    (["eval", "linear", "CKPT"], ("matplotlib",), "eval linear needs matplotlib: pip install 'latentmim[eval]'"),
    (["eval", "all", "CKPT", "suites=knn,video"], ("scipy",), "eval video needs SciPy"),
    (["eval", "all", "CKPT", "suites=knn"], ("matplotlib",), "eval all needs matplotlib"),
    (["ablate", "loss"], ("sklearn",), "ablate loss needs scikit-learn: pip install 'latentmim[eval]'"),
    (["pretrain", "log.tensorboard=true"], ("tensorboard",),
     "log.tensorboard=true needs TensorBoard: pip install 'latentmim[tensorboard]'"),
    (["pretrain", "log.curves=True"], ("matplotlib",), "log.curves=true needs matplotlib: pip install 'latentmim[viz]'"),
    (["pretrain", "-m", "lr=1e-3,2e-3", "log.curves=false,true"], ("matplotlib",), "'latentmim[viz]'"),
])
def test_a_missing_extra_is_one_line_before_anything_runs(args: list[str], missing: tuple[str, ...], message: str,
                                                          ckpt: str, tmp_path: Path, without: Callable[..., None],
                                                          capsys: pytest.CaptureFixture) -> None:
    without(*missing)
    argv = [a.replace("CKPT", f"checkpoint={ckpt}") for a in args] + [f"output_dir={tmp_path / 'out'}"]
    assert message in one_line_error(capsys, argv)
    assert not (tmp_path / "out").exists()  # nothing ran


def test_printing_a_config_needs_no_optional_package(without: Callable[..., None], ckpt: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    without("sklearn", "scipy", "matplotlib", "tensorboard")
    assert main(["pretrain", "--cfg", "job", "log.tensorboard=true"]) == 0
    assert main(["eval", "segment", "--cfg", "job", f"checkpoint={ckpt}"]) == 0
    assert main(["eval", "fewshot", "--help"]) == 0
    assert "needs scikit-learn, matplotlib: pip install 'latentmim[eval]'" in capsys.readouterr().out


def test_default_logging_outputs_without_their_package_are_one_notice(without: Callable[..., None], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    without("tensorboard", "matplotlib")
    logger = MetricsLogger(tmp_path, tensorboard=True)
    assert logger.tb is None
    for step in (1, 2):
        logger.log({"step": step, "epoch": step, "loss": 1.0 / step})
        assert logger.plot_curves() is None
    logger.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["latentmim: note: log.tensorboard needs TensorBoard: pip install 'latentmim[tensorboard]' "
                   "(no TensorBoard events; log.tensorboard=false silences this)",
                   "latentmim: note: log.curves needs matplotlib: pip install 'latentmim[viz]' "
                   "(no curves.png; log.curves=false silences this)"]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2  # the record itself is kept
    assert not (tmp_path / "curves.png").exists() and not (tmp_path / "tb").exists()


def test_eval_knn_needs_no_optional_package(without: Callable[..., None], ckpt: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    without("sklearn", "scipy", "matplotlib", "tensorboard")
    assert main(["eval", "knn", f"checkpoint={ckpt}", "k=3", "workers=0", "progress=false",
                 f"output_dir={tmp_path}"]) == 0
    assert "nn_loo" in capsys.readouterr().out

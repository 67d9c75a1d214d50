"""``latentmim eval SUITE``: user mistakes print one line naming the key or path and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from latentmim.cli.main import main
from latentmim.config.load import compose_config


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import TINY
    from latentmim.engine.pretrain import Pretrainer

    out = tmp_path_factory.mktemp("ckpt")
    trainer = Pretrainer(compose_config([*TINY, f"output_dir={out}", "job_name=t"]))
    trainer.run_dir.mkdir(parents=True)
    trainer.save()
    return str(trainer.run_dir / "checkpoint_latest.pth")


CASES = [
    (["knn"], "missing checkpoint=PATH"),
    (["knn", "checkpoint=/no/ckpt.pth"], "checkpoint '/no/ckpt.pth' does not exist"),
    (["knn", "CKPT", "tempreature=0.1"], "unknown config key 'tempreature' (did you mean 'temperature'?)"),
    (["knn", "CKPT", "k=abc"], "config key 'k'"),
    (["knn", "CKPT", "k=0"], "config key 'k': must be >= 1"),
    (["knn", "CKPT", "feature=pooled"], "config key 'feature'"),
    (["knn", "CKPT", "protocol=all"], "config key 'protocol'"),
    (["knn", "CKPT", "device=tpu"], "config key 'device'"),
    (["knn", "CKPT", "dataset=mnist"], "config key 'dataset'"),
    (["knn", "CKPT", "dataset=fashion_mnist", "data_path=/no/fmnist"], "/no/fmnist"),
    (["knn", "CKPT", "k"], "expected key=value"),
    (["linear", "CKPT", "mode=fast"], "config key 'mode'"),
    (["linear", "CKPT", "warmup_epochs=20", "epochs=5"], "config key 'warmup_epochs'"),
    (["linear", "CKPT", "dataset=imagefolder", "data_path=/no/images"], "/no/images"),
    (["linear", "CKPT", "batch_size=1000"], "config key 'batch_size'"),
    (["finetune", "CKPT", "token_drop=1.0"], "config key 'token_drop'"),
    (["finetune", "CKPT", "batch_size=64"], "config key 'batch_size'"),
    (["finetune", "CKPT", "batch_size=7"], "Mixup/CutMix need an even batch"),
    (["finetune", "CKPT", "layer_decay=0"], "config key 'layer_decay'"),
    (["fewshot", "CKPT", "shots=1,x"], "config key 'shots[1]'"),
    (["fewshot", "CKPT", "shots=0"], "config key 'shots'"),
    (["fewshot", "CKPT", "datasets=imagenet21k"], "config key 'datasets'"),
    (["fewshot", "CKPT", "datasets=dtd"], "transfer_root"),
    (["fewshot", "CKPT", "datasets=dtd", "transfer_root=/no/coop"], "/no/coop"),
    (["all", "CKPT", "knn.kk=3"], "unknown config key 'knn.kk' (did you mean 'knn.k'?)"),
    (["all", "CKPT", "suites=knn,bogus"], "config key 'suites'"),
    (["all", "CKPT", "linear.mode=x"], "config key 'linear.mode'"),
    (["all", "CKPT", "names=a,b"], "config key 'names'"),
    (["all", "CKPT", "suites=knn", "segment.num_images=2"], "suite 'segment' is not run"),
    (["all", "CKPT,/no/other.pth", "suites=knn"], "/no/other.pth"),
]


@pytest.mark.parametrize("args,needle", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, ckpt: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    argv = ["eval", *(a.replace("CKPT", f"checkpoint={ckpt}", 1) if a.startswith("CKPT") else a for a in args)]
    if len(argv) > 2:
        argv.append(f"output_dir={out}")
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_unreadable_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", "knn", f"checkpoint={bad}", f"output_dir={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1


def test_knn_cli_prints_the_table(ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", "knn", f"checkpoint={ckpt}", "k=3", "workers=0", "progress=false",
                 f"output_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "| features | nn_loo | knn3_top1 | knn3_top5 |" in out and str(tmp_path) in out

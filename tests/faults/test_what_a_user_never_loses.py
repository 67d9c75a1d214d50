"""Nothing a user made is overwritten, and nothing a file says is trusted.

Pre-training: a finished run is never started over or finished again; a lock that is a symlink is
refused without touching its target. Loading: stored configs are data (never interpolated) and
every malformed value or file is one line naming the file and the field. Numbers that pass a
range check but mean nothing (nan, inf) are refused.
"""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

import latentmim
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.runtime.checkpoint import load_checkpoint


def one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def finished(tiny, tmp_path):
    cfg = compose_config([*tiny, "epochs=1", "save_freq=1", "job_name=done"])
    pretrain(cfg)
    return Path(cfg.run_dir)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_finished_run_without_its_latest_checkpoint_is_not_started_over(finished, tiny, capsys):
    (finished / "checkpoint_latest.pth").unlink()  # removed to save space
    before = _snapshot(finished)
    for extra in ([], ["resume=true"]):
        assert main(["pretrain", *tiny, "epochs=1", "job_name=done", *extra]) == 2
        one_line_error(capsys, "holds finished results")
    assert _snapshot(finished) == before


def test_resuming_a_finished_run_changes_nothing(finished, tiny, capsys):
    before = _snapshot(finished)
    results = json.loads((finished / "results.json").read_text())
    assert results["train_time_s"] > 0
    assert main(["pretrain", *tiny, "epochs=1", "job_name=done", "resume=true"]) == 0
    assert "finished run" in capsys.readouterr().out
    assert _snapshot(finished) == before


def test_the_training_time_adds_up_over_resumes(tiny, tmp_path):
    cfg = compose_config([*tiny, "epochs=2", "ckpt_steps=1", "job_name=t"])
    assert pretrain(cfg, stop_at_step=7)["status"] == "interrupted"
    so_far = load_checkpoint(tmp_path / "t" / "checkpoint_latest.pth")["train_time_s"]
    assert so_far > 0
    results = pretrain(compose_config([*tiny, "epochs=2", "ckpt_steps=1", "job_name=t", "resume=true"]))
    assert results["train_time_s"] >= round(so_far, 1)


@pytest.mark.parametrize("kind", ["export", "eval results"])
def test_pretraining_into_another_commands_output_is_refused(tiny, tmp_path, capsys, kind):
    folder = tmp_path / "other"
    folder.mkdir()
    if kind == "export":
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"x")
    else:
        (folder / "results.json").write_text('{"suite": "knn"}')
    before = _snapshot(folder)
    assert main(["pretrain", *tiny, "job_name=other"]) == 2
    one_line_error(capsys, str(folder))
    assert _snapshot(folder) == before


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_kept(tiny, tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    run = tmp_path / "linked"
    run.mkdir()
    os.symlink(target, run / ".lock")
    assert main(["pretrain", *tiny, "job_name=linked"]) == 2
    one_line_error(capsys, "symbolic link")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("override,key", [
    ("lr=nan", "lr"), ("blr=inf", "blr"), ("tau=nan", "tau"), ("knn_t=inf", "knn_t"),
    ("weight_decay=nan", "weight_decay"), ("clip_grad=inf", "clip_grad"), ("drop_path=1.5", "drop_path"),
    ("huber_delta=0", "huber_delta"), ("synthetic.image_size=0", "synthetic.image_size"),
    ("env.seed=-1", "env.seed"), ("output_dir=", "output_dir"), ("target_tau_frac=nan", "target_tau_frac"),
])
def test_values_that_pass_a_range_check_but_mean_nothing_are_refused(override, key, capsys):
    assert main(["pretrain", override, "--cfg", "job"]) == 2
    one_line_error(capsys, f"config key '{key}'")


# ------------------------------------------------------------------ files are data


def test_a_run_config_next_to_encoder_weights_is_never_interpolated(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_HEADS", "2")
    cfg = compose_config([*tiny, "epochs=1", "job_name=w"])
    pretrain(cfg)
    run = Path(cfg.run_dir)
    stored = OmegaConf.load(run / "config.yaml")
    stored.num_heads = "${oc.env:SECRET_HEADS}"  # would resolve to 2 (a valid value) if interpolated
    (run / "config.yaml").write_text(OmegaConf.to_yaml(stored))
    with pytest.raises(Exception, match="num_heads"):
        latentmim.load_encoder(run / "encoder.safetensors")


@pytest.mark.parametrize("content,needle", [
    ("num_heads: 0\n", "num_heads"),
    ("num_heads: lots\n", "num_heads"),
    ("num_heads: [unclosed\n", "cannot be read"),
    ("- a list\n", "not a mapping"),
])
def test_a_malformed_run_config_is_one_line(tiny, tmp_path, capsys, content, needle):
    cfg = compose_config([*tiny, "epochs=1", "job_name=m"])
    pretrain(cfg)
    run = Path(cfg.run_dir)
    (run / "config.yaml").write_text(content)
    assert main(["export", f"checkpoint={run / 'encoder.safetensors'}", f"output={tmp_path / 'x'}"]) == 2
    one_line_error(capsys, needle)


@pytest.mark.parametrize("model_args,needle", [
    ({"patch_size": 0}, "patch_size"),
    ({"num_heads": 0}, "num_heads"),
    ({"num_heads": 5}, "num_heads=5 does not divide"),
    ({"depth": -1}, "depth"),
    ({"embed_dim": "wide"}, "embed_dim must be a positive integer"),
    (["a", "list"], "mapping"),
])
def test_a_malformed_export_config_is_one_line_before_anything_is_allocated(tiny, tmp_path, capsys,
                                                                              model_args, needle):
    cfg = compose_config([*tiny, "epochs=1", "job_name=e"])
    pretrain(cfg)
    out = tmp_path / "export"
    assert main(["export", f"checkpoint={cfg.run_dir}", f"output={out}"]) == 0
    config = json.loads((out / "config.json").read_text())
    config["model_args"] = model_args if isinstance(model_args, list) else {**config["model_args"], **model_args}
    (out / "config.json").write_text(json.dumps(config))
    assert main(["export", f"checkpoint={out}", f"output={tmp_path / 'again'}"]) == 2
    one_line_error(capsys, needle)


def _malformed(kind: str, path: Path) -> None:
    if kind == "authors without a bias":
        sys.path.insert(0, str(Path(__file__).parents[1] / "interop"))
        from authors_format import authors_checkpoint

        ckpt = authors_checkpoint()
        del ckpt["state_dict"]["module.encoder.embed.proj.bias"]
        torch.save(ckpt, path)
    elif kind == "MAE with a 2-D patch weight":
        state = {"patch_embed.proj.weight": torch.zeros(32, 48), "pos_embed": torch.zeros(1, 17, 32)}
        torch.save({"model": {**state, "mask_token": torch.zeros(1, 1, 32)}}, path)
    elif kind == "a non-tensor weight":
        torch.save({"model": {"patch_embed.proj.weight": "zeros"}}, path)
    else:  # "config: 5"
        torch.save({"model": {"encoder.patch_embed.proj.weight": torch.zeros(32, 3, 4, 4)}, "config": 5}, path)


@pytest.mark.parametrize("kind,needle", [
    ("authors without a bias", "encoder.embed.proj.bias"),
    ("MAE with a 2-D patch weight", "patch_embed.proj.weight"),
    ("a non-tensor weight", "patch_embed.proj.weight"),
    ("config: 5", "stored config"),
])
def test_a_malformed_foreign_checkpoint_is_one_line(tmp_path, capsys, kind, needle):
    path = tmp_path / "bad.pth"
    _malformed(kind, path)
    assert main(["export", f"checkpoint={path}", f"output={tmp_path / 'x'}"]) == 2
    assert str(path) in one_line_error(capsys, needle)


def test_an_encoder_safetensors_and_an_export_both_load_with_their_run_config(tiny, tmp_path):
    cfg = compose_config([*tiny, "epochs=1", "job_name=ok"])
    pretrain(cfg)
    run = Path(cfg.run_dir)
    encoder = latentmim.load_encoder(run / "encoder.safetensors")
    save_file(encoder.state_dict(), str(tmp_path / "bare.safetensors"))
    with pytest.raises(Exception, match="width 32 is not a standard ViT width"):
        latentmim.load_encoder(tmp_path / "bare.safetensors")  # no config.yaml beside it: heads unknown
    assert latentmim.load_encoder(tmp_path / "bare.safetensors", num_heads=2).embed_dim == 32

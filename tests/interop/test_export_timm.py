"""``latentmim export``: timm-loadable safetensors + a Hugging Face folder; load_encoder and hub."""

import json
from pathlib import Path

import pytest
import timm
import torch
from authors_format import authors_checkpoint, authors_encoder_forward
from omegaconf import OmegaConf
from safetensors.torch import load_file

import latentmim
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.data.info import FASHION_MNIST_MEAN, SYNTHETIC_MEAN, SYNTHETIC_STD
from latentmim.masking.patchify import all_ids, patchify
from latentmim.methods.factory import build_model
from latentmim.probing.features import encode_images

ROOT = Path(__file__).resolve().parents[2]


def our_checkpoint(tmp_path: Path, tiny: list, extra: list = (), in_chans: int = 3) -> tuple[Path, torch.nn.Module]:
    """A latentmim checkpoint (model + config, as Pretrainer writes them) of a random model."""
    cfg = compose_config([*tiny, *extra])
    torch.manual_seed(1)
    model = build_model(cfg, in_chans)
    path = tmp_path / "run" / "checkpoint_latest.pth"
    path.parent.mkdir()
    torch.save({"model": model.state_dict(), "config": OmegaConf.to_container(OmegaConf.structured(cfg))}, path)
    (path.parent / "results.json").write_text(json.dumps({"trained": {"nn_loo": 41.5, "knn20_top1": 40.0}}))
    return path, model.encoder.eval()


def test_export_loads_in_timm_strictly_and_outputs_the_nn_feature(tmp_path, tiny, capsys):
    path, encoder = our_checkpoint(tmp_path, tiny)
    out = tmp_path / "export"
    assert main(["export", f"checkpoint={path}", f"output={out}"]) == 0
    assert "features match timm" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    # 1. the safetensors file loads strictly into the named timm architecture
    model = timm.create_model(config["architecture"], pretrained=False, **config["model_args"]).eval()
    model.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    # 2. the folder is a Hugging Face style timm model: local-dir (or hf-hub after a push)
    hub_model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    imgs = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        nn_feature = encode_images(encoder, imgs)  # the feature every NN number is scored on
        _, prenorm = encoder.forward_patches(patchify(imgs, 4), all_ids(4, 4), return_prenorm=True)
        for timm_model in (model, hub_model):
            assert torch.allclose(timm_model(imgs), nn_feature, atol=1e-6)
            pooled = timm_model.forward_head(timm_model.forward_features(imgs), pre_logits=True)
            assert torch.allclose(pooled, nn_feature, atol=1e-6)
            assert torch.allclose(timm_model.forward_features(imgs), prenorm, atol=1e-6)
        assert torch.allclose(encoder(imgs), nn_feature, atol=1e-6)  # and latentmim's encoder(x)
    data = timm.data.resolve_data_config({}, model=hub_model)
    assert data["input_size"] == (3, 16, 16) and tuple(data["mean"]) == SYNTHETIC_MEAN and tuple(data["std"]) == SYNTHETIC_STD
    assert config["latentmim"]["nn"] == {"nn_loo": 41.5, "knn20_top1": 40.0}
    assert "41.50" in (out / "README.md").read_text()
    # 3. latentmim.load_encoder (export, checkpoint, run folder) and torch.hub give the same feature
    for loaded in (latentmim.load_encoder(out), latentmim.load_encoder(path), latentmim.load_encoder(path.parent),
                   torch.hub.load(str(ROOT), "encoder", source="local", path=str(out))):
        assert torch.allclose(loaded(imgs), nn_feature, atol=1e-6)
        assert torch.allclose(encode_images(loaded, imgs), nn_feature, atol=1e-6)


def test_pool_token_exports_timms_classic_cls_model(tmp_path, tiny):
    path, encoder = our_checkpoint(tmp_path, tiny)
    out = tmp_path / "cls"
    assert main(["export", f"checkpoint={path}", f"output={out}", "pool=token"]) == 0
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    imgs = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(model.forward_features(imgs), encoder.forward_features(imgs), atol=1e-6)
        assert torch.allclose(model(imgs), encoder.forward_features(imgs)[:, 0], atol=1e-6)
    assert "cls" in json.loads((out / "config.json").read_text())["latentmim"]["feature"]
    # an export of an export keeps its pooling's weights: token needs the final norm an avg export lacks
    avg = tmp_path / "avg"
    assert main(["export", f"checkpoint={path}", f"output={avg}"]) == 0
    again = tmp_path / "again"
    assert main(["export", f"checkpoint={avg}", f"output={again}"]) == 0
    assert torch.allclose(latentmim.load_encoder(again)(imgs), encode_images(encoder, imgs), atol=1e-6)
    assert main(["export", f"checkpoint={avg}", f"output={tmp_path / 'no'}", "pool=token"]) == 2


def test_export_of_a_grayscale_run_and_of_its_encoder_safetensors(tmp_path, tiny):
    path, encoder = our_checkpoint(tmp_path, tiny, ["dataset=fashion_mnist"], in_chans=1)
    out = tmp_path / "gray"
    assert main(["export", f"checkpoint={path}", f"output={out}"]) == 0
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    assert model.pretrained_cfg["mean"] == list(FASHION_MNIST_MEAN)
    imgs = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(imgs), encoder(imgs), atol=1e-6)
    # a run's encoder.safetensors (timm names) with its config.yaml next to it (non-standard width 32)
    from safetensors.torch import save_file

    save_file(encoder.state_dict(), str(path.parent / "encoder.safetensors"))
    (path.parent / "config.yaml").write_text(OmegaConf.to_yaml({"num_heads": 2}))
    loaded = latentmim.load_encoder(path.parent / "encoder.safetensors")
    assert loaded.in_chans == 1 and torch.equal(loaded.blocks[0].attn.qkv.weight, encoder.blocks[0].attn.qkv.weight)


def test_export_of_the_authors_checkpoint_reproduces_their_features(tmp_path):
    torch.save(authors_checkpoint(), tmp_path / "theirs.pth")
    out = tmp_path / "theirs"
    assert main(["export", f"checkpoint={tmp_path / 'theirs.pth'}", f"output={out}"]) == 0
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    state = {k.removeprefix("module."): v for k, v in authors_checkpoint()["state_dict"].items()}
    imgs = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        theirs = latentmim.load_encoder(tmp_path / "theirs.pth")
        assert torch.allclose(theirs.forward_features(imgs), authors_encoder_forward(state, imgs, 3)[0], atol=1e-5)
        assert torch.allclose(model(imgs), theirs(imgs), atol=1e-5)
    assert json.loads((out / "config.json").read_text())["latentmim"]["format"] == "lmim_authors"


@pytest.mark.parametrize("args,needle", [
    (["output=X"], "missing 'checkpoint='"),
    (["checkpoint=/no/such.pth", "output=X"], "/no/such.pth"),
    (["checkpoint=C", "output=X", "num_heads=two"], "num_heads"),
    (["checkpoint=C"], "missing 'output='"),
    (["checkpoint=C", "output=EXISTING"], "holds 'keep.txt', which is not part of an export"),
    (["checkpoint=C", "output=EXISTING", "overwrite=true"], "holds 'keep.txt', which is not part of an export"),
    (["checkpoint=C", "output=EXISTING/keep.txt"], "is a file, not a folder"),
])
def test_export_errors_are_one_line(args, needle, tmp_path, tiny, capsys):
    path, _ = our_checkpoint(tmp_path, tiny)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    args = [a.replace("=C", f"={path}").replace("=X", f"={tmp_path / 'x'}").replace("=EXISTING", f"={existing}")
            for a in args]
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists() and (existing / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_only_the_exports_own_files(tmp_path, tiny, capsys):
    # the old behaviour ran rmtree on output=: a run folder or the working directory was wiped
    path, _ = our_checkpoint(tmp_path, tiny)
    out = tmp_path / "export"
    assert main(["export", f"checkpoint={path}", f"output={out}"]) == 0
    first = (out / "model.safetensors").read_bytes()
    assert main(["export", f"checkpoint={path}", f"output={out}"]) == 2
    assert "pass overwrite=true" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    other, _ = our_checkpoint(tmp_path / "b", tiny, ["embed_dim=64", "num_heads=4"])
    assert main(["export", f"checkpoint={other}", f"output={out}", "overwrite=true"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (out / "model.safetensors").read_bytes() != first
    assert json.loads((out / "config.json").read_text())["model_args"]["embed_dim"] == 64
    # a run folder (anything besides an export's files) is refused even with overwrite=true
    run = path.parent
    before = sorted(p.name for p in run.iterdir())
    assert main(["export", f"checkpoint={path}", f"output={run}", "overwrite=true"]) == 2
    assert sorted(p.name for p in run.iterdir()) == before

"""Your own images: any folder of image files, a Dataset from Python, and your own training loop."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

import latentmim
from latentmim.cli.main import main
from latentmim.config.load import compose_config


def write_images(root: Path, n: int, seed: int = 0, nested: bool = True) -> list[Path]:
    """JPEG and PNG files of different sizes and modes (RGB, grey, RGBA, palette), some nested."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert(["RGB", "L", "RGBA", "P"][i % 4])
        folder = root / f"part{i % 3}" / "deeper" if nested and i % 2 else root
        folder.mkdir(parents=True, exist_ok=True)
        if image.mode in ("RGBA", "P"):
            path = folder / f"img{i}.png"
        else:
            path = folder / f"img{i}.{'jpg' if i % 3 else 'png'}"
        image.save(path)
        paths.append(path)
    return paths


def test_pretrain_on_a_folder_of_unlabelled_images(tiny, tmp_path, capsys):
    folder = tmp_path / "my_images"
    write_images(folder, 40)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # skipped and counted, not fatal
    (folder / "notes.txt").write_text("not an image")  # not an image extension: not read
    run = tmp_path / "runs"
    assert main(["pretrain", *tiny, "dataset=imagefolder", f"data_path={folder}", "epochs=1",
                 f"output_dir={run}", "job_name=folder"]) == 0
    out = capsys.readouterr().out
    assert "NN monitor off" in out and "nn_dataset" in out
    results = json.loads((run / "folder" / "results.json").read_text())
    assert results["trained"] == {} and results["dataset"] == "imagefolder"
    assert results["skipped_images"] >= 1  # the broken file, substituted by its neighbour
    assert (run / "folder" / "encoder.safetensors").is_file()
    encoder = latentmim.load_encoder(run / "folder")
    assert encoder(torch.randn(2, 3, 16, 16)).shape == (2, 32)


def test_the_monitor_scores_a_folder_run_on_labelled_data_when_given(tiny, tmp_path, capsys):
    folder = tmp_path / "flat"
    write_images(folder, 24, nested=False)
    assert main(["pretrain", *tiny, "dataset=imagefolder", f"data_path={folder}", "epochs=1",
                 "nn_dataset=synthetic", "baselines=true", "job_name=scored"]) == 0
    assert "NN monitor on synthetic" in capsys.readouterr().out
    results = json.loads((tmp_path / "scored" / "results.json").read_text())
    assert set(results["trained"]) == {"nn_loo", "knn20_top1"} and "raw_pixels" in results


def test_a_labelled_image_folder_monitors_itself(tiny, tmp_path, capsys):
    for split in ("train", "val"):
        for cls in ("cats", "dogs"):
            write_images(tmp_path / "data" / split / cls, 12, seed=len(cls), nested=False)
    assert main(["pretrain", *tiny, "dataset=imagefolder", f"data_path={tmp_path / 'data'}", "epochs=1",
                 "job_name=labelled"]) == 0
    assert "class folders" in capsys.readouterr().out
    trained = json.loads((tmp_path / "labelled" / "results.json").read_text())["trained"]
    assert 0 <= trained["nn_loo"] <= 100


class Noise(Dataset):
    """A user's dataset: (C, H, W) float tensors in [0, 1] with an integer label."""

    def __len__(self) -> int:
        return 48

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(i)), i % 3


def test_pretrain_on_your_own_dataset_from_python(tiny, tmp_path):
    cfg = latentmim.compose_config([*tiny, "epochs=1"])
    results = latentmim.pretrain(cfg, dataset=Noise())
    assert results["dataset"] == "custom" and results["trained"] == {}
    stored = latentmim.load_encoder(tmp_path / cfg.job_name)
    assert stored(torch.randn(1, 3, 16, 16)).shape == (1, 32)
    # resuming from the command line cannot see the Python dataset: one line, not a traceback
    assert main(["pretrain", *tiny, "resume=true", f"job_name={cfg.job_name}", "dataset=custom"]) == 2


def test_your_own_training_loop(tmp_path):
    torch.manual_seed(0)
    model = latentmim.build_method("demo", method="lmim", embed_dim=32, depth=2, num_heads=2,
                                   decoder_embed_dim=32, decoder_num_heads=2, proj={"mlp_dim": 64})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(8, 3, model.crop_size, model.crop_size)
    losses = []
    for step in range(5):
        model.set_progress(step / 5)
        model.update_target(model.momentum_at(0.99, step / 5))
        loss, metrics = model(images)  # views drawn inside, from the method's own generator
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and set(metrics) >= {"loss_pred", "avg_sim_trg"}
    # views passed explicitly reproduce a step exactly
    views = model.sample_views(8, torch.Generator().manual_seed(3))
    a, _ = model(images, views)
    b, _ = model(images, views)
    assert torch.equal(a, b)
    with pytest.raises(Exception, match="epochs"):
        latentmim.build_method("demo", epochs=-1)


def test_bad_folder_inputs_are_one_line_errors(tiny, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, needle in (([f"data_path={empty}"], "no image files"),
                         ([f"data_path={tmp_path / 'missing'}"], "is not a folder"),
                         ([], "needs data_path")):
        assert main(["pretrain", *tiny, "dataset=imagefolder", *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
    with pytest.raises(Exception, match="nn_dataset"):
        compose_config([*tiny, "nn_dataset=nonsense"])

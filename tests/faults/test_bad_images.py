"""Corrupt, truncated, zero-byte and wrong-mode files in an image folder.

Training counts them and carries on (each is replaced by the next readable image and counted in
``skipped_images``); every evaluation drops them from the evaluated set and reports how many, so
a substitute never meets its own twin in leave-one-out 1-NN.
"""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentmim.config.eval_schema import KnnEvalConfig
from latentmim.config.load import compose_config
from latentmim.data.synthetic import SyntheticShapes
from latentmim.engine.pretrain import pretrain
from latentmim.eval.knn.suite import run_knn_eval

GOOD_PER_CLASS = {"train": 12, "val": 8}


def _png_bytes(img: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _bad_files(img: np.ndarray) -> dict[str, bytes]:
    """Files that cannot be decoded: each must be skipped in training and dropped in evaluation."""
    png = _png_bytes(img)
    return {
        "corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,  # a PNG signature, then noise
        "truncated.png": png[: len(png) // 2],
        "zero.png": b"",
    }


def _wrong_mode_files(img: np.ndarray) -> dict[str, bytes]:
    """Readable files in another mode than RGB: each must be used, converted to the right RGB."""
    out = {}
    rgb = Image.fromarray(img)
    for name, converted, fmt in (("grey.png", rgb.convert("L"), "PNG"), ("palette.png", rgb.quantize(256), "PNG"),
                                 ("rgba.png", rgb.convert("RGBA"), "PNG"), ("cmyk.jpg", rgb.convert("CMYK"), "JPEG")):
        buf = io.BytesIO()
        converted.save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        out[name] = buf.getvalue()
    buf = io.BytesIO()
    grey16 = np.asarray(rgb.convert("L")).astype(np.uint16) * 257  # the 8-bit grey, in 16 bits (I;16)
    Image.fromarray(grey16).save(buf, format="PNG")
    out["grey16.png"] = buf.getvalue()
    return out


def _folder(root: Path) -> dict[str, int]:
    """An image folder of real rendered shapes, 2 classes, with broken files in class 'a'; returns bad counts."""
    shapes = SyntheticShapes("train", 64, image_size=24, seed=0)
    bad = {}
    for split, n in GOOD_PER_CLASS.items():
        k = 0
        for cls in ("a", "b"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:03d}.png").write_bytes(_png_bytes(shapes.render(k)[0]))
                k += 1
        files = _bad_files(shapes.render(0)[0])
        for name, data in {**files, **_wrong_mode_files(shapes.render(1)[0])}.items():
            (root / split / "a" / name).write_bytes(data)
        bad[split] = len(files)
    return bad


WRONG_MODE = len(_wrong_mode_files(np.zeros((4, 4, 3), np.uint8)))


def _readable_in_pil(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).convert("RGB")
        return True
    except Exception:
        return False


def test_the_broken_files_are_really_broken_and_the_others_load_as_the_right_rgb(tmp_path):
    from latentmim.data.robust import load_rgb

    img = SyntheticShapes("train", 1, image_size=24).render(0)[0]
    assert not any(_readable_in_pil(data) for data in _bad_files(img).values())
    grey = np.asarray(Image.fromarray(img).convert("L").convert("RGB"), dtype=np.int16)
    for name, data in _wrong_mode_files(img).items():
        (tmp_path / name).write_bytes(data)
        got = np.asarray(load_rgb(tmp_path / name), dtype=np.int16)
        assert got.shape == img.shape, name
        want = grey if name.startswith("grey") else img.astype(np.int16)
        # exact for the lossless modes; CMYK goes through JPEG, the palette through 256 colours
        mean_tol = {"cmyk.jpg": 6.0, "palette.png": 3.0}.get(name, 0.5)
        assert np.abs(got - want).mean() < mean_tol, name


def test_training_counts_and_skips_them_and_evaluation_drops_and_reports_them(tiny, tmp_path):
    root = tmp_path / "folder"
    unreadable = _folder(root)
    cfg = compose_config([*tiny, "dataset=imagefolder", f"data_path={root}", "epochs=2", "batch_size=4",
                          "nn_train_images=100", "nn_val_images=100", "synthetic.image_size=24"])
    results = pretrain(cfg)
    n_train = 2 * GOOD_PER_CLASS["train"] + WRONG_MODE + unreadable["train"]
    # Each epoch visits every file once; every unreadable one is counted once per visit.
    assert results["skipped_images"] == 2 * unreadable["train"], (results["skipped_images"], n_train)
    assert results["trained"]["dropped_images"] == unreadable["train"] + unreadable["val"]

    out = run_knn_eval(KnnEvalConfig(checkpoint=str(Path(cfg.run_dir) / "checkpoint_latest.pth"),
                                     output_dir=str(tmp_path / "knn"), workers=0, progress=False, baselines=True))
    stored = json.loads((tmp_path / "knn" / "results.json").read_text())
    assert stored["dropped_images"] == {"val": unreadable["val"], "train": unreadable["train"]}
    assert stored["num_val"] == 2 * GOOD_PER_CLASS["val"] + WRONG_MODE  # wrong-mode images are kept
    assert stored["num_train"] == n_train - unreadable["train"]
    assert out["scores"] == stored["scores"]


@pytest.mark.parametrize("name", ["corrupt.png", "truncated.png", "zero.png"])
def test_each_kind_alone_is_dropped_by_the_knn_suite(tiny, tmp_path, name):
    root = tmp_path / "folder"
    _folder(root)
    for split in ("train", "val"):  # keep only the one broken file under test
        for other in (root / split / "a").glob("*.png"):
            if other.name in _bad_files(np.zeros((4, 4, 3), np.uint8)) and other.name != name:
                other.unlink()
    cfg = compose_config([*tiny, "dataset=imagefolder", f"data_path={root}", "epochs=1", "batch_size=4"])
    pretrain(cfg)
    run_knn_eval(KnnEvalConfig(checkpoint=str(Path(cfg.run_dir) / "checkpoint_latest.pth"),
                               output_dir=str(tmp_path / "knn"), workers=0, progress=False))
    stored = json.loads((tmp_path / "knn" / "results.json").read_text())
    assert stored["dropped_images"] == {"val": 1, "train": 1}
    assert stored["num_val"] == 2 * GOOD_PER_CLASS["val"] + WRONG_MODE

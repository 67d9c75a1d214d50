"""`latentmim eval segment` end to end on a briefly pre-trained tiny encoder."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.data.synthetic import SyntheticShapes
from latentmim.engine.pretrain import pretrain
from latentmim.eval.dense.segment import run_segment_eval


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    pretrain(compose_config([*TINY, "epochs=1", "warmup_epochs=0", f"output_dir={out}"]))
    return out / "demo" / "checkpoint_latest.pth"


def valid_png(path):
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        return img.size


@pytest.mark.slow
def test_cli_on_synthetic_images_with_ground_truth(checkpoint, tmp_path, capsys):
    out = tmp_path / "seg"
    code = main(["eval", "segment", f"checkpoint={checkpoint}", "input_size=32", "num_images=2",
                 f"output_dir={out}", "progress=false"])  # fmt: skip
    assert code == 0
    assert "mIoU@3" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert set(res["miou"]) == {"encoder", "raw_pixels", "random_init"}
    for source in res["miou"].values():
        assert set(source) == {"3", "4", "5", "best_k"}
        assert all(0.0 < v <= 1.0 for v in source.values())
        assert source["best_k"] >= max(source[k] for k in ("3", "4", "5")) - 1e-12
    for rec in res["images"]:
        assert rec["grid"] == [8, 8]  # 32 px with 4-px patches: the position table was resized
        w, h = valid_png(out / rec["figure"])
        assert w > 3 * h  # one row: image | 3 overlays | t-SNE
    assert (out / "results.md").read_text().count("| encoder |") == 1


@pytest.mark.slow
def test_python_api_on_image_files_and_determinism(checkpoint, tmp_path):
    shapes = SyntheticShapes("val", 2, image_size=40, seed=5)
    files = []
    for i in range(2):
        files.append(tmp_path / f"img{i}.png")
        Image.fromarray(shapes.render(i)[0]).save(files[-1])
    kwargs = dict(checkpoint=str(checkpoint), images=[str(f) for f in files], clusters=[2, 3],
                  input_size=24, tsne=False, baselines=False, progress=False)  # fmt: skip
    res = run_segment_eval(output_dir=str(tmp_path / "a"), **kwargs)
    assert res["miou"] == {} and [r["name"] for r in res["images"]] == ["img0", "img1"]
    assert valid_png(tmp_path / "a" / "figures" / "img0.png")
    assert "figures only" in (tmp_path / "a" / "results.md").read_text()
    again = run_segment_eval(output_dir=str(tmp_path / "b"), **kwargs)
    a = np.asarray(Image.open(tmp_path / "a" / "figures" / "img1.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "figures" / "img1.png"))
    np.testing.assert_array_equal(a, b)
    assert again["images"][1]["grid"] == [6, 6]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["images=/no/such/img.png"], "/no/such/img.png"),
        (["input_size=30"], "config key 'input_size': 30 is not a multiple of the patch size 4"),
        (["clusters=1,3"], "config key 'clusters'"),
        (["feature=cls"], "config key 'feature'"),
        (["cluster=3"], "unknown config key 'cluster' (did you mean 'clusters'?)"),
        (["num_images=x"], "config key 'num_images'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, args, needle):
    out = tmp_path / "never"
    code = main(["eval", "segment", f"checkpoint={checkpoint}", f"output_dir={out}", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["eval", "segment", f"checkpoint={tmp_path}/none.pth"]) == 2
    err = capsys.readouterr().err
    assert "none.pth" in err and len(err.strip().splitlines()) == 1

"""`latentmim eval video` end to end: procedural videos written as DAVIS, propagated, scored."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from latentmim.cli.main import main
from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.eval.dense.davis import read_annotation, voc_palette
from latentmim.eval.dense.video import run_video_eval
from latentmim.eval.dense.vos_metrics import sequence_scores


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    pretrain(compose_config([*TINY, "epochs=1", "warmup_epochs=0", f"output_dir={out}"]))
    return out / "demo" / "checkpoint_latest.pth"


@pytest.mark.slow
def test_cli_on_synthetic_videos_then_python_api_on_the_written_tree(checkpoint, tmp_path, capsys):
    out = tmp_path / "vid"
    code = main(["eval", "video", f"checkpoint={checkpoint}", "dataset=synthetic_video", "num_videos=2",
                 "num_frames=6", "video_size=48", f"output_dir={out}", "progress=false"])  # fmt: skip
    assert code == 0
    assert "J&F" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert set(res["summary"]) == {"encoder", "raw_pixels", "static_first_mask"}
    for s in res["summary"].values():
        assert 0.0 <= s["J_mean"] <= 1.0 and 0.0 <= s["F_mean"] <= 1.0
        assert s["J&F"] == pytest.approx((s["J_mean"] + s["F_mean"]) / 2)
    root = out / "synthetic_davis"
    for rec in res["sequences"]:
        pngs = sorted((out / "masks" / rec["name"]).glob("*.png"))
        assert [p.stem for p in pngs] == [f"{t:05d}" for t in range(6)]
        with Image.open(pngs[3]) as img:
            assert img.mode == "P" and img.size == (48, 48) and img.getpalette()[:768] == voc_palette()
        # the reported numbers are the metrics of the written masks against the annotations
        pred = np.stack([read_annotation(p)[0] for p in pngs])
        gt = np.stack([read_annotation(root / "Annotations" / "480p" / rec["name"] / p.name)[0] for p in pngs])
        np.testing.assert_array_equal(pred[0], gt[0])  # the given first frame comes back
        scores = sequence_scores(pred, gt, rec["objects"])
        objs = rec["scores"]["encoder"]["objects"]
        for o, s in scores.items():
            assert objs[str(o)]["J"] == pytest.approx(s["J"].mean())
            assert objs[str(o)]["F"] == pytest.approx(s["F"].mean())
        with Image.open(out / rec["figure"]) as img:
            img.verify()
    # The same tree through davis_root and the Python API gives the same numbers.
    again = run_video_eval(checkpoint=str(checkpoint), davis_root=str(root), output_dir=str(tmp_path / "b"),
                           baselines=False, figures=False, progress=False)  # fmt: skip
    assert again["summary"]["encoder"] == pytest.approx(res["summary"]["encoder"])
    assert set(again["summary"]) == {"encoder"}


@pytest.mark.parametrize(
    "args,needle",
    [
        (["davis_root=/no/davis"], "/no/davis"),
        (["dataset=cifar10"], "config key 'dataset'"),
        (["radius=-1"], "config key 'radius'"),
        (["topk=0"], "config key 'topk'"),
        (["temprature=0.1"], "unknown config key 'temprature' (did you mean 'temperature'?)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, args, needle):
    out = tmp_path / "never"
    code = main(["eval", "video", f"checkpoint={checkpoint}", f"output_dir={out}", *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_missing_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["eval", "video", f"checkpoint={tmp_path}/none.pth", "dataset=synthetic_video"]) == 2
    err = capsys.readouterr().err
    assert "none.pth" in err and len(err.strip().splitlines()) == 1

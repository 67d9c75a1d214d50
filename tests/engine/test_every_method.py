"""Every method trains through the same engine, resumes bit for bit, exports to timm and is evaluated.

The methods own their views (random split, SimMIM's mask cells, ConMIM's blocks, I-JEPA's
context and target blocks), their targets and their schedules; the engine must treat them alike.
"""

from pathlib import Path

import pytest
import timm
import torch

from latentmim.cli.main import main
from latentmim.config.load import METHODS, compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.runtime.checkpoint import load_checkpoint

# What each method needs on the tiny 4x4 grid (the ablate scales set the same for their grids).
SMALL_GRID = {
    "simmim": ["simmim.mask_patch=1"],
    "conmim": ["conmim.proj_hidden_dim=32", "conmim.proj_dim=16"],
    "pcae": ["pcae.drop_stages=2"],
    "ijepa": ["ijepa.pred_depth=1", "ijepa.pred_emb_dim=16", "ijepa.min_keep=2", "ijepa.reach_edges=true"],
}


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "supervised"])
def test_method_resumes_bit_for_bit_exports_and_evaluates(method, tiny, tmp_path):
    common = [*tiny, f"method={method}", *SMALL_GRID.get(method, []), "epochs=2", "ckpt_steps=1",
              "drop_path=0.1", "log.print_freq=1", "target_tau_frac=0.1"]
    ref = pretrain(compose_config([*common, "job_name=ref"]))
    assert ref["trained"]["nn_loo"] >= 0
    assert pretrain(compose_config([*common, "job_name=cut"]), stop_at_step=8)["status"] == "interrupted"
    pretrain(compose_config([*common, "job_name=cut", "resume=True"]))
    a = load_checkpoint(tmp_path / "ref" / "checkpoint_latest.pth")["model"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoint_latest.pth")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), method

    out = tmp_path / "export"
    assert main(["export", f"checkpoint={tmp_path / 'ref'}", f"output={out}"]) == 0
    model = timm.create_model(f"local-dir:{out}", pretrained=True)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 32)
    assert main(["eval", "knn", f"checkpoint={tmp_path / 'ref' / 'checkpoint_latest.pth'}",
                 f"output_dir={tmp_path / 'knn'}", "progress=false", "workers=0"]) == 0
    assert Path(tmp_path / "knn" / "results.json").is_file()

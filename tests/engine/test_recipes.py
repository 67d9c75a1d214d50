"""Every named recipe composes and trains a few steps (the recipes' numbers come from `ablate`/docs, not tests)."""

from pathlib import Path

import pytest

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain

CONFIGS_DIR = Path(__file__).resolve().parents[2] / "src" / "latentmim" / "configs"
RECIPES = sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))
# Only the data is shrunk (and the ImageNet-sized models' batch): the recipe's model and method stay.
SMALL_DATA = ["dataset=synthetic", "synthetic.num_train=32", "synthetic.num_val=16", "nn_train_images=32",
              "nn_val_images=16", "epochs=1", "batch_size=16", "env.workers=0", "log.progress=false",
              "log.tensorboard=false", "baselines=false"]


def test_the_recipes_are_the_shipped_ones():
    assert {"demo", "lmim", "mae", "pcae", "data2vec"} <= set(RECIPES)


@pytest.mark.parametrize("name", [r for r in RECIPES if r == "demo" or r.startswith("small")])
def test_small_recipe_composes_and_trains_a_few_steps(name, tmp_path):
    cfg = compose_config([*SMALL_DATA, f"output_dir={tmp_path}"], name)
    results = pretrain(cfg)
    assert 0 <= results["trained"]["nn_loo"] <= 100 and (Path(cfg.run_dir) / "encoder.safetensors").is_file()


@pytest.mark.parametrize("name", [r for r in RECIPES if r != "demo" and not r.startswith("small")])
def test_paper_recipe_composes_with_the_papers_numbers(name):
    cfg = compose_config([], name)
    assert cfg.target_tau_frac is None and cfg.warmup_frac is None  # the paper's schedules, untouched
    assert cfg.grid_size == 14 and cfg.patch_size == 16

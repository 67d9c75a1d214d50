"""Shared test settings: a tiny Latent MIM that trains in seconds on CPU."""

import pytest

# 16x16 eval images (4x4 grid of 4-px patches), train crops 24 px (gap 2).
TINY = [
    "embed_dim=32", "depth=2", "num_heads=2", "patch_size=4", "grid_size=4", "patch_gap=2",
    "num_vis=4", "decoder_embed_dim=16", "decoder_num_heads=2", "decoder_depth=1",
    "proj.mlp_dim=32", "proj.mlp_depth=2", "batch_size=8", "epochs=2", "warmup_epochs=1",
    "lr=1e-3", "synthetic.num_train=48", "synthetic.num_val=24", "synthetic.image_size=24",
    "nn_train_images=48", "nn_val_images=24", "env.workers=0", "log.progress=false",
    "log.tensorboard=false", "eval_freq=1", "save_freq=1", "baselines=false",
    # the demo recipe's run-relative schedules off: tests compute the paper's schedules by hand
    "warmup_frac=null", "target_tau_frac=null",
]


@pytest.fixture
def tiny(tmp_path):
    """Overrides for a tiny run writing into a fresh temporary output_dir."""
    return [*TINY, f"output_dir={tmp_path}"]

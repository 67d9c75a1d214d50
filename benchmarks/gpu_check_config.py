"""The configurations of benchmarks/gpu_check.sh's pre-training step, declared once.

    python benchmarks/gpu_check_config.py gpu    # the pretrain key=value words, one per line
    python benchmarks/gpu_check_config.py dry

``gpu``: ViT-S/16 (384 wide, 12 blocks, 6 heads) on 128-px synthetic images (an 8x8 grid, crops of
160 px with gap 4), the paper's decoder and projector shapes at ViT-S widths, bf16, 3 epochs of
20k images: a few minutes on one H100 with the NN monitor after each epoch. The paper's config
``lmim`` is the base (``--config-name lmim``), so no size of the demo config leaks in.
``dry``: the same command at tiny sizes on a CPU (CI runs it).
"""

from __future__ import annotations

import sys

CONFIG_NAME = "lmim"
PRETRAIN: dict[str, list[str]] = {
    "gpu": ["dataset=synthetic", "synthetic.num_train=20000", "synthetic.num_val=2000", "synthetic.image_size=160",
            "encoder=vit_small", "patch_size=16", "grid_size=8", "patch_gap=4", "num_vis=8",
            "decoder_depth=3", "decoder_embed_dim=256", "decoder_num_heads=8", "proj.mlp_dim=1024",
            "avg_sim_coeff=0.1", "batch_size=256", "epochs=3", "warmup_frac=0.1", "target_tau_frac=0.02",
            "lr=1e-3", "eval_freq=1", "nn_train_images=5000", "nn_val_images=2000", "env.device=cuda",
            "env.precision=bf16", "env.workers=8", "baselines=true"],
    "dry": ["dataset=synthetic", "synthetic.num_train=64", "synthetic.num_val=32", "synthetic.image_size=24",
            "encoder=vit_tiny", "embed_dim=32", "depth=2", "num_heads=2", "patch_size=4", "grid_size=4",
            "patch_gap=2", "num_vis=4", "decoder_depth=1", "decoder_embed_dim=16", "decoder_num_heads=2",
            "proj.mlp_dim=32", "batch_size=16", "epochs=1", "warmup_epochs=0", "nn_train_images=64",
            "nn_val_images=32", "env.device=cpu", "env.precision=fp32", "env.workers=0", "baselines=true"],
}

if __name__ == "__main__":
    print("\n".join([f"--config-name={CONFIG_NAME}", *PRETRAIN[sys.argv[1]]]))

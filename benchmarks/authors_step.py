"""The Latent MIM authors' training step, timed like ours (benchmarks/throughput.py), for side-by-side runs.

    python benchmarks/authors_step.py --authors-dir /path/to/LatentMIM --config vitb16_paper --device cuda

``--authors-dir`` is a checkout of github.com/yibingwei-1/LatentMIM (never committed here); its
``models_lmim.build_lmim`` is imported from there. The step is theirs as in ``main_lmim.py``: fp16
autocast (``torch.cuda.amp.autocast()``, or bf16 / fp32 with ``--precision``), GradScaler, AdamW,
EMA update inside the forward. Random images, no data loading; median img/s over the timed steps.
Prints one JSON record.
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

import torch

from latentmim.runtime.timing import median_seconds

# Our configs in their constructor's terms: (backbone, grid, gap, num_vis, decoder depth, mlp_dim,
# mlp_depth, batch). The tiny one overrides the backbone's table entry (dry runs on CPU).
CONFIGS = {
    "vitb16_paper": ("vit_base", 14, 4, 20, 3, 4096, 3, 256),
    "vits16_ref": ("vit_small", 14, 4, 20, 3, 4096, 3, 16),
    "tiny": ("tiny", 4, 2, 4, 1, 32, 2, 8),
}


def build(authors_dir: str, name: str) -> tuple[torch.nn.Module, int, int]:
    sys.path.insert(0, authors_dir)
    import models_lmim  # the authors' module, from their checkout

    backbone, grid, gap, num_vis, dec_depth, mlp_dim, mlp_depth, batch = CONFIGS[name]
    if backbone == "tiny":
        models_lmim.CFG["tiny"] = {"embed_dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 4, "patch_size": 4}
        dec = {"decoder_embed_dim": 16, "decoder_num_heads": 2}
    else:
        dec = {}
    patch = models_lmim.CFG[backbone]["patch_size"]
    model = models_lmim.build_lmim(backbone, grid_size=grid, patch_gap=gap, num_vis=num_vis, decoder_depth=dec_depth,
                                   target_depth=models_lmim.CFG[backbone]["depth"], avg_sim_coeff=0.1,
                                   proj_cfg=SimpleNamespace(mlp_dim=mlp_dim, mlp_depth=mlp_depth), **dec)
    return model, batch, grid * (patch + gap)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors-dir", required=True)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="vitb16_paper")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model, batch, size = build(args.authors_dir, args.config)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[args.precision]
    scaler = torch.amp.GradScaler(dev.type, enabled=args.precision == "fp16" and dev.type == "cuda")
    imgs = torch.randn(batch, 3, size, size, device=dev)

    def step() -> None:
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = model(imgs, mom=0.99, sim_trg=0.75, update_ema=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = median_seconds(step, args.steps, dev, warmup=0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    print(json.dumps({"code": "authors", "config": args.config, "precision": args.precision, "device": args.device,
                      "img_per_s": batch / seconds, "peak_mem_mb": peak, "steps": args.steps}))


if __name__ == "__main__":
    main()

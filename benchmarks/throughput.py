"""Training throughput of named configs: images/s, GFLOP per image, peak memory.

    python benchmarks/throughput.py vits16_ref fp32
    python benchmarks/throughput.py vits16_ref all      # fp32 vs bf16 side by side, with ratios
    python benchmarks/throughput.py demo compile        # fp32 eager vs torch.compile side by side
    python benchmarks/throughput.py methods fp32 --scale demo --dataset synthetic
                                                        # every method of the headline table (and PCAE)
                                                        # at the same encoder, side by side

Each precision runs in its own subprocess so peak memory is measured separately. A step is a
full optimizer step (EMA update, forward, backward, AdamW) on random images, without data loading.
Images/s is the median over the timed steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from latentmim.config.load import compose_config
from latentmim.methods.factory import build_model
from latentmim.training.optim import build_adamw
from latentmim.training.precision import autocast

# A CPU reference workload: ViT-S/16, 280-px crops (gap 4), 20 visible patches,
# decoder 3 x 512, projector 3 x 4096, batch 16. The authors' code: 3.9 img/s fp32 on 2 cores,
# 33.4 GFLOP per image.
CONFIGS: dict[str, list[str]] = {
    "vits16_ref": ["encoder=vit_small", "patch_size=16", "grid_size=14", "patch_gap=4", "num_vis=20",
                   "decoder_depth=3", "decoder_embed_dim=512", "decoder_num_heads=16",
                   "proj.mlp_dim=4096", "proj.mlp_depth=3", "batch_size=16", "avg_sim_coeff=0.1"],
    "vitb16_ref": ["encoder=vit_base", "patch_size=16", "grid_size=14", "patch_gap=4", "num_vis=20",
                   "decoder_depth=3", "batch_size=16", "avg_sim_coeff=0.1"],
    # The paper's ViT-B/16 pre-training step (benchmarks/gpu_check.sh): 280-px crops with gap 4, 20
    # visible, decoder 3 x 512, projector 3 x 4096, batch 256.
    "vitb16_paper": ["encoder=vit_base", "patch_size=16", "grid_size=14", "patch_gap=4", "num_vis=20",
                     "decoder_depth=3", "decoder_embed_dim=512", "decoder_num_heads=16", "proj.mlp_dim=4096",
                     "proj.mlp_depth=3", "batch_size=256", "avg_sim_coeff=0.1"],
    # tiny sizes for dry runs of the scripts that use this one (seconds on a CPU)
    "tiny": ["encoder=vit_tiny", "embed_dim=32", "depth=2", "num_heads=2", "patch_size=4", "grid_size=4",
             "patch_gap=2", "num_vis=4", "decoder_depth=1", "decoder_embed_dim=16", "decoder_num_heads=2",
             "proj.mlp_dim=32", "batch_size=8"],
    "demo": [],
}
# Dense bf16 tensor-core peaks (TFLOP/s, NVIDIA's data sheets) for MFU, by a part of the name
# torch.cuda.get_device_name reports, most specific first; --peak-tflops overrides.
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0, "H100": 989.0, "A100": 312.0,
                    "L40S": 362.0, "A10": 125.0}


def peak_tflops(device_name: str) -> float | None:
    """The bf16 peak of a GPU named like ``torch.cuda.get_device_name`` does (None when unknown)."""
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in device_name), None)
REFERENCE = {"vits16_ref": {"img_per_s_fp32": 3.9, "gflop_per_img": 33.4}}


# ``methods``: the rows of the ablate headline table (and PCAE's default row), as a table trains them.
METHOD_ROWS = (("headline", "mae"), ("pcae", "exp2_case1"), ("headline", "simmim"), ("headline", "conmim"),
               ("headline", "data2vec"), ("headline", "lmim"), ("headline", "ijepa"), ("headline", "supervised"))


def method_words(table: str, row: str, scale: str, dataset: str) -> list[str]:
    """The config words of an ablate table's row at a model scale (the encoder is the scale's)."""
    from latentmim.ablate.plan import AblateOptions, row_words
    from latentmim.ablate.tables import SUPERVISED, TABLES

    t = TABLES[table]
    r = SUPERVISED if row == "supervised" else t.row(row)
    return [*row_words(t, r, AblateOptions(dataset=dataset, model=scale)), "epochs=1", "warmup_epochs=0"]


def measure(name: str, precision: str, steps: int, warmup: int, device: str, compiled: bool = False,
            words: list[str] | None = None) -> dict:
    if words is not None:  # a method row (see METHOD_ROWS), on the paper's config as ablate composes it
        cfg = compose_config([*words, f"env.precision={precision}"], "lmim")
    else:
        cfg = compose_config([*CONFIGS[name], f"env.precision={precision}"], "demo" if name == "demo" else "lmim")
    dev = torch.device(device)
    torch.manual_seed(0)
    chans = 1 if cfg.dataset == "fashion_mnist" else 3
    model = build_model(cfg, in_chans=chans).to(dev)
    opt = build_adamw(model, 1e-4, 0.05)
    b, s = cfg.batch_size, cfg.train_size
    imgs = torch.randn(b, chans, s, s, device=dev)
    labels = torch.randint(0, 10, (b,), device=dev)
    extra = {"labels": labels} if model.uses_labels else {}
    gen = torch.Generator().manual_seed(0)
    forward = torch.compile(model) if compiled else model  # as env.compile=True does (runtime/parallel.py)

    def step() -> None:
        model.update_target(0.999)
        views = model.sample_views(b, gen).to(dev)
        with autocast(precision, dev):
            loss, _ = forward(imgs, views, **extra)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        with autocast(precision, dev):  # counted eagerly: the compiled graph hides its ops from the counter
            loss, _ = model(imgs, model.sample_views(b, gen).to(dev), **extra)
        loss.backward()
    opt.zero_grad(set_to_none=True)
    gflop = counter.get_total_flops() / b / 1e9
    t_compile = time.perf_counter()
    step()  # the first call compiles
    compile_s = time.perf_counter() - t_compile
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"config": name, "method": cfg.method, "precision": precision + (" compiled" if compiled else ""),
            "device": device,
            "threads": torch.get_num_threads(), "first_step_s": compile_s,
            "img_per_s": b / statistics.median(times), "gflop_per_img": gflop, "peak_mem_mb": peak_mb,
            "steps": steps}


def with_mfu(rec: dict, peak: float | None) -> dict:
    """Model FLOP utilisation: counted FLOP/s over the device's peak (None without a peak)."""
    rec["mfu"] = None if not peak else rec["gflop_per_img"] * rec["img_per_s"] / (peak * 1e3)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", choices=[*sorted(CONFIGS), "methods"],
                    help="a named workload, or 'methods': every method at one encoder (--scale, --dataset)")
    ap.add_argument("precision", choices=["fp32", "bf16", "fp16", "all", "compile"],
                    help="all: fp32 vs bf16; compile: fp32 eager vs fp32 torch.compile")
    ap.add_argument("--compiled", action="store_true", help="torch.compile the training forward")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", action="store_true", help="print one JSON record (used by 'all')")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU (default: by GPU name)")
    ap.add_argument("--scale", default="demo", help="methods: the ablate model scale (tiny, small, demo, vit_small, vit_base)")
    ap.add_argument("--dataset", default="synthetic", help="methods: the ablate dataset (sets the patch grid)")
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)  # methods: one row, in a subprocess
    args = ap.parse_args()
    if args.config == "methods":
        run_methods(args)
        return
    if args.precision not in ("all", "compile"):
        rec = measure(args.config, args.precision, args.steps, args.warmup, args.device, args.compiled)
        name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "cpu"
        rec["device_name"] = name
        rec["peak_tflops"] = args.peak_tflops or peak_tflops(name)
        rec = with_mfu(rec, rec["peak_tflops"])
        print(json.dumps(rec) if args.json else _table([rec], args.config))
        return
    recs = []
    variants = [("fp32", []), ("bf16", [])] if args.precision == "all" else [("fp32", []), ("fp32", ["--compiled"])]
    for prec, extra in variants:
        out = subprocess.run([sys.executable, __file__, args.config, prec, "--json", "--steps", str(args.steps),
                              "--warmup", str(args.warmup), "--device", args.device, *extra],
                             check=True, capture_output=True, text=True).stdout
        recs.append(json.loads(out.strip().splitlines()[-1]))
    print(_table(recs, args.config))


def run_methods(args: argparse.Namespace) -> None:
    """Every method row in its own subprocess (its own peak memory), then one table."""
    if args.row:
        table, row = args.row.split("/")
        rec = measure(f"{table}/{row}", args.precision, args.steps, args.warmup, args.device,
                      words=method_words(table, row, args.scale, args.dataset))
        print(json.dumps(rec))
        return
    recs = []
    for table, row in METHOD_ROWS:
        out = subprocess.run([sys.executable, __file__, "methods", args.precision, "--row", f"{table}/{row}",
                              "--scale", args.scale, "--dataset", args.dataset, "--steps", str(args.steps),
                              "--warmup", str(args.warmup), "--device", args.device],
                             check=True, capture_output=True, text=True).stdout
        recs.append(json.loads(out.strip().splitlines()[-1]))
    mae = next(r for r in recs if r["method"] == "mae")
    lines = [f"every method at the {args.scale} scale on {args.dataset}'s grid, {args.precision} on "
             f"{recs[0]['device']} ({recs[0]['threads']} threads), median of {args.steps} steps",
             "| method (ablate row) | img/s | GFLOP/img | peak mem (MiB) | img/s vs MAE | GFLOP vs MAE |",
             "|---|---|---|---|---|---|"]
    for r in recs:
        lines.append(f"| {r['method']} ({r['config']}) | {r['img_per_s']:.1f} | {r['gflop_per_img']:.3g} | "
                     f"{r['peak_mem_mb']:.0f} | {r['img_per_s'] / mae['img_per_s']:.2f}x | "
                     f"{r['gflop_per_img'] / mae['gflop_per_img']:.2f}x |")
    print("\n".join(lines))


def _table(recs: list[dict], name: str) -> str:
    lines = [f"config {name} on {recs[0]['device']} ({recs[0]['threads']} threads), median of {recs[0]['steps']} steps",
             "| precision | img/s | GFLOP/img | peak mem (MiB) | first step (s) | speed vs first row | mem vs first row |",
             "|---|---|---|---|---|---|---|"]
    base = recs[0]
    for r in recs:
        lines.append(f"| {r['precision']} | {r['img_per_s']:.2f} | {r['gflop_per_img']:.3g} | {r['peak_mem_mb']:.0f} | "
                     f"{r['first_step_s']:.1f} | "
                     f"{r['img_per_s'] / base['img_per_s']:.2f}x | {r['peak_mem_mb'] / base['peak_mem_mb']:.2f}x |")
    ref = REFERENCE.get(name)
    if ref:
        vs_ref = ", ".join(f"ours {r['precision']} = {r['img_per_s'] / ref['img_per_s_fp32']:.2f}x" for r in recs)
        lines.append(f"reference (authors' code, fp32, 2 CPU cores): {ref['img_per_s_fp32']} img/s, "
                     f"{ref['gflop_per_img']} GFLOP/img; {vs_ref}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""The CUDA path: every method's step in bf16 and fp16, EMA, exact resume, SDPA kernels, eval suites.

Marked ``cuda`` and skipped without a GPU (run by ``benchmarks/gpu_check.sh`` on the GPU machine;
its ``--dry-run`` collects them on CPU, where they skip).
"""

from pathlib import Path

import pytest
import torch

from latentmim.config.load import compose_config
from latentmim.engine.pretrain import pretrain
from latentmim.probing.knn import l2_normalize, top_similar
from latentmim.runtime.checkpoint import load_checkpoint

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

METHODS = {
    "lmim": [],
    "mae": ["method=mae", "mask_ratio=0.75", "patch_gap=0"],
    "pcae": ["method=pcae", "patch_gap=0"],
    "data2vec": ["method=data2vec", "mask_ratio=0.5", "patch_gap=0", "data2vec.top_k=2"],
    "supervised": ["method=supervised", "patch_gap=0"],
}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_cuda(tiny, method, precision):
    cfg = compose_config([*tiny, *METHODS[method], "env.device=cuda", f"env.precision={precision}", "epochs=1",
                          f"job_name={method}_{precision}", "log.print_freq=1"])
    results = pretrain(cfg)
    assert 0 <= results["trained"]["nn_loo"] <= 100
    state = load_checkpoint(Path(cfg.run_dir) / "checkpoint_latest.pth")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    if precision == "fp16":
        assert state["scaler"]  # the GradScaler ran (its scale is part of the checkpoint)


def test_ema_on_cuda_follows_the_formula(tiny):
    from latentmim.methods.factory import build_model

    model = build_model(compose_config(tiny), in_chans=3).cuda()
    online = {k: v.detach().clone() for k, v in model.encoder.named_parameters()}
    target = {k: v.detach().clone() for k, v in model.target_encoder.named_parameters()}
    shared = target.keys() & online.keys()
    assert len(shared) > 10
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.5)
    model.update_target(0.9)
    after = dict(model.target_encoder.named_parameters())
    for k in shared:
        expected = 0.9 * target[k] + 0.1 * (online[k] + 0.5)
        torch.testing.assert_close(after[k], expected, rtol=1e-6, atol=1e-6)


def test_resume_on_cuda_equals_the_uninterrupted_run(tiny):
    common = [*tiny, "env.device=cuda", "env.precision=bf16", "ckpt_steps=1"]
    ref = compose_config([*common, "job_name=ref"])
    pretrain(ref)
    cut = [*common, "job_name=cut"]
    assert pretrain(compose_config(cut), stop_at_step=8)["status"] == "interrupted"
    pretrain(compose_config([*cut, "resume=True"]))
    a = load_checkpoint(Path(ref.run_dir) / "checkpoint_latest.pth")["model"]
    b = load_checkpoint(Path(compose_config(cut).run_dir) / "checkpoint_latest.pth")["model"]
    # cuBLAS/cuDNN reductions are not bit-reproducible without deterministic mode: float-close
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5, rtol=1e-4) for k in a)


def test_attention_uses_a_flash_or_memory_efficient_kernel_in_bf16():
    from torch.profiler import ProfilerActivity, profile

    from latentmim.models.attention import attend

    q, k, v = (torch.randn(8, 6, 197, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        attend(q, k, v).sum().backward()
        torch.cuda.synchronize()
    names = " ".join(e.name.lower() for e in prof.key_averages())
    assert "flash" in names or "efficient" in names or "fmha" in names, names[:2000]
    assert "_scaled_dot_product_attention_math" not in names


def test_eval_suites_run_on_cuda(tiny, tmp_path):
    from latentmim.config.eval_schema import KnnEvalConfig, LinearEvalConfig
    from latentmim.eval.knn.suite import run_knn_eval
    from latentmim.eval.linear.suite import run_linear_eval

    cfg = compose_config([*tiny, "env.device=cuda", "epochs=1", "job_name=ev"])
    pretrain(cfg)
    ckpt = str(Path(cfg.run_dir) / "checkpoint_latest.pth")
    knn = run_knn_eval(KnnEvalConfig(checkpoint=ckpt, device="cuda", workers=0, progress=False,
                                     output_dir=str(tmp_path / "knn")))
    assert 0 <= knn["scores"]["nn_loo"] <= 100 and knn["format"]
    lin = run_linear_eval(LinearEvalConfig(checkpoint=ckpt, device="cuda", workers=0, progress=False, mode="cached",
                                           epochs=2, warmup_epochs=0, batch_size=16,
                                           output_dir=str(tmp_path / "linear")))
    assert 0 <= lin["scores"]["top1"] <= 100


def test_two_stage_knn_search_on_cuda_returns_the_exact_neighbours():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 384, generator=gen)
    bank = centres[torch.randint(0, 10, (60000,), generator=gen)] + 0.5 * torch.randn(60000, 384, generator=gen)
    queries = centres[torch.randint(0, 10, (2000,), generator=gen)] + 0.5 * torch.randn(2000, 384, generator=gen)
    bank, queries = l2_normalize(bank).cuda(), l2_normalize(queries).cuda()
    _, exact = top_similar(queries, bank, 20, search="exact")
    _, two_stage = top_similar(queries, bank, 20, search="bf16")
    assert (exact == two_stage).all(dim=1).float().mean().item() >= 0.999

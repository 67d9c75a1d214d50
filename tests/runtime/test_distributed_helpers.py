"""The process-group helpers and the global-batch randomness, against single-process references."""

import pytest
import torch
from timm.layers import DropPath
from torch import nn

from conftest import TINY
from latentmim.cli.main import main
from latentmim.data.loader import EpochSampler
from latentmim.masking.views import sample_views
from latentmim.runtime import distributed as dist_
from latentmim.runtime.global_batch import (
    GlobalBatchDropPath,
    rank_views,
    use_global_batch_drop_path,
)


def test_rank_views_reassemble_the_global_batch():
    views = sample_views(12, 4, 5, 2, torch.Generator().manual_seed(3))
    parts = [rank_views(views, r, 3) for r in range(3)]
    assert all(p.perm.shape == (4, 16) and p.num_vis == 5 for p in parts)
    # rank r holds global rows r, r+3, ...: interleaving the parts gives the global views back
    perm = torch.stack([p.perm for p in parts], dim=1).reshape(12, 16)
    offsets = torch.stack([p.offsets for p in parts], dim=1).reshape(12, 16, 2)
    assert torch.equal(perm, views.perm) and torch.equal(offsets, views.offsets)


@pytest.mark.parametrize("world", [1, 2, 4])
def test_global_batch_drop_path_is_timm_drop_path_of_the_global_batch(world):
    x = torch.randn(4 * world, 3, 8)
    torch.manual_seed(7)
    reference = DropPath(0.5)(x)  # one process, whole global batch
    for rank in range(world):
        torch.manual_seed(7)  # every rank's global RNG is in the same state
        ours = GlobalBatchDropPath(0.5, rank, world)(x[rank::world])
        assert torch.equal(ours, reference[rank::world])
    assert not torch.equal(reference, x)  # the reference did drop samples


def test_drop_path_modules_are_swapped_without_touching_the_state_dict():
    model = nn.Sequential(nn.Linear(3, 3), DropPath(0.2), nn.Sequential(DropPath(0.1)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_global_batch_drop_path(model, 1, 1) == 0  # single process: nothing to do
    assert use_global_batch_drop_path(model, 1, 2) == 2
    assert isinstance(model[1], GlobalBatchDropPath) and model[1].drop_prob == 0.2
    assert isinstance(model[2][0], GlobalBatchDropPath) and model[2][0].rank == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_without_a_process_group_collectives_are_identities():
    x = torch.arange(10.0).reshape(5, 2)
    assert dist_.get_world_size() == 1 and dist_.is_main_process()
    assert torch.equal(dist_.all_gather_ordered(x, 4), x[:4])
    assert dist_.mean_over_ranks({"b": torch.tensor(2.5), "a": 1}) == {"a": 1.0, "b": 2.5}
    assert dist_.broadcast_object({"k": 1}) == {"k": 1}


def _collectives(total: int) -> dict:
    """Runs in each of the launched processes."""
    env = dist_.init_distributed(torch.device("cpu"))
    full = torch.arange(total * 3, dtype=torch.float64).reshape(total, 3)
    # this rank's strided, padded shard, exactly as the NN monitor's sampler makes it
    shard = EpochSampler(total, shuffle=False, rank=env.rank, world_size=env.world_size).epoch_indices()
    gathered = dist_.all_gather_ordered(full[shard], total)
    out = {
        "env": (env.rank, env.world_size, env.backend, dist_.is_main_process()),
        "gathered_ok": torch.equal(gathered, full),
        "mean": dist_.mean_over_ranks({"x": float(env.rank + 1), "n": 10.0}),
        "sum": dist_.all_reduce_sum(torch.tensor([env.rank + 1.0])).item(),
        "object": dist_.broadcast_object({"from": env.rank}),
    }
    dist_.barrier()
    dist_.cleanup()
    return out


@pytest.mark.slow
def test_collectives_on_two_gloo_processes():
    results = dist_.launch_local(_collectives, 2, (7,))  # 7 rows: rank 1's shard is padded
    assert sorted(results) == [0, 1]
    for rank, out in results.items():
        assert out["env"] == (rank, 2, "gloo", rank == 0)
        assert out["gathered_ok"]
        assert out["mean"] == {"n": 10.0, "x": 1.5}
        assert out["sum"] == 3.0
        assert out["object"] == {"from": 0}


@pytest.mark.skipif(torch.cuda.device_count() >= 8, reason="this machine has 8 GPUs")
@pytest.mark.parametrize("args,needle", [
    (["env.distributed=True", "env.ngpu=8"], "config key 'env.ngpu': 8 processes need 8 GPUs"),
    (["env.distributed=True", "env.ngpu=2", "env.world_size=2", "env.device=cpu"], "torchrun --nnodes"),
    (["env.distributed=True", "env.ngpu=2", "env.device=cuda:1"], "config key 'env.device'"),
    (["env.backend=mpi"], "config key 'env.backend'"),
    (["env.fsdp=True", "env.precision=fp16"], "config key 'env.fsdp'"),
])
def test_process_layout_mistakes_are_one_line_before_anything_starts(args, needle, tmp_path, capsys):
    assert main(["pretrain", *TINY, f"output_dir={tmp_path}", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())

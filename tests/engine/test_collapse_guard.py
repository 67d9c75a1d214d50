"""The collapse guard: counting rule, messages, and real naive vs EMA training runs."""

import json
from pathlib import Path

import pytest

from latentmim.config.load import compose_config
from latentmim.engine.collapse import CollapseGuard, likely_cause
from latentmim.engine.pretrain import pretrain
from latentmim.runtime.checkpoint import load_checkpoint


def test_fires_after_patience_consecutive_steps_once_per_key():
    guard = CollapseGuard(threshold=0.95, patience=3, causes={"avg_sim_trg": "CAUSE"})
    seq = [0.97, 0.98, 0.5, 0.96, 0.99, 0.97, 0.99, 0.99]  # the dip at step 2 resets the count
    fired = [bool(guard.update(i, {"avg_sim_trg": s, "avg_sim_pred": 0.2})) for i, s in enumerate(seq)]
    assert fired == [False, False, False, False, False, True, False, False]
    event = CollapseGuard(0.95, 2).update(0, {"avg_sim_trg": 0.99}) or None
    assert event is None  # patience 2 needs two steps
    g = CollapseGuard(0.95, 2, {"avg_sim_trg": "target_mode=naive lets ..."})
    g.update(7, {"avg_sim_trg": 0.99})
    (event,) = g.update(8, {"avg_sim_trg": 0.991, "avg_sim_pred": 0.999})
    assert (event.key, event.steps, event.step) == ("avg_sim_trg", 2, 8)
    for part in ("S(targets) = 0.991", "above 0.95", "2 consecutive steps", "target_mode=naive"):
        assert part in event.message
    assert g.update(9, {"avg_sim_pred": 0.999})[0].key == "avg_sim_pred"  # pred fires on its own


def test_missing_keys_are_never_counted_and_threshold_is_strict():
    g = CollapseGuard(0.95, 1)
    assert g.update(0, {"avg_sim_vis": 1.0}) == []  # MAE reports no latent targets
    assert g.update(1, {"avg_sim_trg": 0.95}) == []  # "above" the threshold
    with pytest.raises(ValueError):
        CollapseGuard(0.95, 0)


def test_likely_cause_names_the_setting():
    assert "target_mode=naive" in likely_cause("lmim", "naive", "mse", 0.0, "avg_sim_trg")
    assert "target_mode=independent" in likely_cause("lmim", "independent", "mse", 0.0, "avg_sim_trg")
    assert "loss=mse" in likely_cause("lmim", "ema", "mse", 0.0, "avg_sim_pred")
    assert "avg_sim_coeff" in likely_cause("lmim", "ema", "infonce_patches", 0.0, "avg_sim_trg")
    assert "teacher" in likely_cause("pcae", "ema", "mse", 0.0, "avg_sim_trg")


# The collapse ablation's setting (MSE, self-attention decoder, no projector) on the tiny model:
# 100 steps of 16 images; the naive target reaches S(targets) ~0.99 within ~40 steps, the EMA
# target stays near 0.6.
COLLAPSE_SETTING = ["loss=mse", "proj.mlp_depth=0", "decoder_type=self", "avg_vis_mask_token=false",
                    "epochs=10", "synthetic.num_train=160", "batch_size=16", "eval_freq=100", "save_freq=100",
                    "log.print_freq=5", "log.curves=false", "collapse.patience=20"]


def _steps(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_naive_targets_collapse_and_the_guard_stops_the_run(tiny, capsys):
    cfg = compose_config([*tiny, *COLLAPSE_SETTING, "target_mode=naive", "collapse.stop=true", "job_name=naive"])
    result = pretrain(cfg)
    assert result["status"] == "collapsed" and result["epoch"] < 10  # stopped early
    events = [json.loads(line) for line in (Path(cfg.run_dir) / "collapse.jsonl").read_text().splitlines()]
    # The targets and the predictions collapse together (their similarities cross 0.95 a few steps
    # apart): the stop comes at the first of the two to stay above it for 20 steps.
    assert {e["key"] for e in events} <= {"avg_sim_trg", "avg_sim_pred"} and events
    event = events[0]
    assert {e["step"] for e in events} == {event["step"]}  # one stop, at the first collapse
    assert event["value"] > 0.95 and event["steps"] == 20
    assert "target_mode=naive" in capsys.readouterr().err
    steps = _steps(cfg.run_dir)
    assert steps[0]["avg_sim_trg"] < 0.8 < 0.95 < steps[-1]["avg_sim_trg"]  # driven towards 1
    ckpt = load_checkpoint(Path(cfg.run_dir) / "checkpoint_latest.pth")  # the checkpoint is kept
    # the guard sees every step; the run stops at the next print interval (log.print_freq=5),
    # where the step's numbers reach the host
    saved_at = ckpt["epoch"] * 10 + ckpt["batch"]
    assert event["step"] <= saved_at < event["step"] + cfg.log.print_freq and saved_at % cfg.log.print_freq == 0


@pytest.mark.slow
def test_momentum_targets_do_not_collapse(tiny):
    cfg = compose_config([*tiny, *COLLAPSE_SETTING, "target_mode=ema", "collapse.stop=true", "job_name=ema"])
    assert pretrain(cfg).get("status") != "collapsed"
    assert not (Path(cfg.run_dir) / "collapse.jsonl").exists()
    steps = _steps(cfg.run_dir)
    assert len(steps) == 20  # 100 steps, all of them trained
    assert max(r["avg_sim_trg"] for r in steps[-5:]) < 0.8

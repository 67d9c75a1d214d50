"""Compose a configuration from a named YAML plus ``key=value`` overrides, then validate it.

Hydra's compose API with the schema registered as a structured config gives us strict key and
type checking for free; :func:`validate` adds the semantic checks. Every failure becomes a
:class:`ConfigError` whose message names the offending key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from latentmim.config.errors import ConfigError
from latentmim.config.schema import PretrainConfig
from latentmim.models.pos_embed import POS_SPACINGS
from latentmim.models.vit import VIT_PRESETS

DROP_CASES = (1, 2, 3, 4, 5)  # PCAE drop cases, defined in latentmim.methods.token_drop

WORKERS = ("main_lmim",)
METHODS = ("lmim", "mae", "pcae", "data2vec", "simmim", "conmim", "ijepa", "supervised")
# Methods whose views are the random visible/hidden split of num_vis / mask_ratio; the others
# draw their own masks (SimMIM, ConMIM, I-JEPA) or see every patch (supervised).
RANDOM_VIEW_METHODS = ("lmim", "mae", "pcae", "data2vec")
CONMIM_PERTURB = ("target", "online", "both", "none")  # where ConMIM's strong augmentation goes
CONMIM_TARGET_MODES = ("ema", "stopgrad", "naive")  # ConMIM's momentum / weight-shared / no stop-grad targets
DECODERS = ("cross", "self")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CLUSTERS = ("slurm", "local")  # submitit executors for env.slurm=True
BACKENDS = ("auto", "nccl", "gloo")
TARGET_MODES = ("naive", "independent", "stopgrad", "ema")
LOSSES = ("infonce_patches", "patch_disc", "mse", "l1", "huber", "norm_l2")
DATASETS = (
    "synthetic",
    "fashion_mnist",
    "cifar10",
    "cifar100",
    "stl10",
    "imagefolder",
    "imagenet",
    "imagenet100",
    "custom",  # a Dataset passed to latentmim.pretrain from Python
)
# Keys that stored configs may carry but that no longer select anything: dropped when read.
RETIRED_KEYS = ("augment",)

ConfigStore.instance().store(name="pretrain_schema", node=PretrainConfig)


def _hydra_message(err: Exception) -> str:
    """Hydra/OmegaConf errors span several lines; keep the first and name the key."""
    msg = str(err).strip().splitlines()[0]
    key = getattr(err, "full_key", None) or getattr(getattr(err, "__cause__", None), "full_key", None)
    if key and re.search(r"Key '[^']+' (is )?not in", str(err)):
        return f"unknown config key '{key}'{_suggest(str(key))}"
    if key:
        return f"config key '{key}': {msg}"
    return msg


def _suggest(key: str) -> str:
    """" (did you mean 'x'?)" for a misspelt key, from the schema's own keys."""
    known = _all_keys(OmegaConf.structured(PretrainConfig))
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _all_keys(node: object, prefix: str = "") -> list[str]:
    keys = []
    for k in node:  # type: ignore[attr-defined]
        v = node[k]  # type: ignore[index]
        full = f"{prefix}{k}"
        keys += _all_keys(v, full + ".") if OmegaConf.is_dict(v) else [full]
    return keys


def compose_config(overrides: Sequence[str] = (), config_name: str = "demo") -> PretrainConfig:
    """Build a validated :class:`PretrainConfig` from a named config and ``key=value`` overrides.

    Raises:
        ConfigError: unknown key, wrong type, unknown config name, or a failed check.
    """
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"expected key=value overrides, got '{bad[0]}'")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("latentmim.configs", version_base=None):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(_hydra_message(err)) from None
    except Exception as err:  # Hydra wraps parse/compose failures in its own types
        cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
        raise ConfigError(_hydra_message(cause)) from None
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(obj, PretrainConfig)
    if obj.env.ngpu == 0:  # the authors' launcher's way to say "no GPU": one process on CPU
        obj.env.ngpu = 1
        obj.env.device = "cpu" if obj.env.device == "auto" else obj.env.device
    validate(obj)
    return obj


def _choice(key: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {', '.join(map(str, allowed))}")


def _positive(key: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"config key '{key}': must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _finite(node: object, prefix: str = "") -> None:
    """Every float of the config (nested groups and lists too) is a finite number."""
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _finite(value, key + ".")
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config key '{key}': must be a finite number, got {v}")


def validate(cfg: PretrainConfig) -> None:
    """Semantic checks the type system cannot express. Raises :class:`ConfigError`."""
    _finite(cfg)
    if not cfg.output_dir.strip():
        raise ConfigError("config key 'output_dir': must be a folder, got ''")
    if not 0.0 <= cfg.drop_path < 1.0:
        raise ConfigError(f"config key 'drop_path': must be in [0, 1), got {cfg.drop_path}")
    _positive("huber_delta", cfg.huber_delta)
    _positive("synthetic.image_size", cfg.synthetic.image_size)
    _positive("env.seed", cfg.env.seed, allow_zero=True)
    if cfg.synthetic.seed is not None:
        _positive("synthetic.seed", cfg.synthetic.seed, allow_zero=True)
    _choice("worker", cfg.worker, WORKERS)
    _choice("method", cfg.method, METHODS)
    _choice("encoder", cfg.encoder, tuple(VIT_PRESETS))
    _choice("decoder_type", cfg.decoder_type, DECODERS)
    _choice("target_mode", cfg.target_mode, TARGET_MODES)
    _choice("loss", cfg.loss, LOSSES)
    _choice("dataset", cfg.dataset, DATASETS)
    _choice("env.precision", cfg.env.precision, PRECISIONS)
    _choice("pos_spacing", cfg.pos_spacing, POS_SPACINGS)
    if cfg.nn_dataset is not None:
        _choice("nn_dataset", cfg.nn_dataset, tuple(d for d in DATASETS if d != "custom"))
    for key in ("patch_size", "grid_size", "epochs", "batch_size", "accum_iter", "blr",
                "decoder_embed_dim", "decoder_num_heads", "tau", "save_freq",
                "knn_k", "knn_t", "embed_dim", "depth", "num_heads", "target_depth"):
        _positive(key, getattr(cfg, key))
    for key in ("patch_gap", "warmup_epochs", "decoder_depth", "weight_decay", "avg_sim_coeff",
                "drop_path", "ckpt_steps", "min_lr_frac", "eval_freq"):
        _positive(key, getattr(cfg, key), allow_zero=True)
    _positive("proj.mlp_depth", cfg.proj.mlp_depth, allow_zero=True)
    _positive("proj.mlp_dim", cfg.proj.mlp_dim)
    _positive("env.workers", cfg.env.workers, allow_zero=True)
    _positive("synthetic.num_train", cfg.synthetic.num_train)
    _positive("synthetic.num_val", cfg.synthetic.num_val)
    _positive("train_images", cfg.train_images)
    if cfg.lr is not None:
        _positive("lr", cfg.lr)
    _positive("log.print_freq", cfg.log.print_freq)
    for key in ("nn_train_images", "nn_val_images"):
        value = getattr(cfg, key)
        if value is not None and value < (2 if key == "nn_val_images" else 1):
            raise ConfigError(f"config key '{key}': must be >= {2 if key == 'nn_val_images' else 1} "
                              f"(leave-one-out 1-NN needs two val images), got {value}")
    if cfg.clip_grad is not None:
        _positive("clip_grad", cfg.clip_grad)
    if not cfg.job_name or cfg.job_name in (".", "..") or "/" in cfg.job_name or "\\" in cfg.job_name:
        raise ConfigError(f"config key 'job_name': {cfg.job_name!r} must be a plain folder name (no '/', not empty)")

    if cfg.input_size is not None and cfg.input_size != cfg.train_size:
        raise ConfigError(
            f"config key 'input_size': {cfg.input_size} does not fit grid_size x (patch_size + "
            f"patch_gap) = {cfg.grid_size} x ({cfg.patch_size} + {cfg.patch_gap}) = {cfg.train_size}"
        )
    n = cfg.grid_size**2
    if cfg.mask_ratio is not None:
        if not 0.0 < cfg.mask_ratio < 1.0:
            raise ConfigError(f"config key 'mask_ratio': must be in (0, 1), got {cfg.mask_ratio}")
    elif cfg.method in RANDOM_VIEW_METHODS and not 1 <= cfg.num_vis < n:
        raise ConfigError(f"config key 'num_vis': must be in [1, {n - 1}] for a {cfg.grid_size}x{cfg.grid_size} grid, got {cfg.num_vis}")
    if cfg.target_tau_frac is not None and not 0.0 < cfg.target_tau_frac <= 1.0:
        raise ConfigError(f"config key 'target_tau_frac': must be in (0, 1], got {cfg.target_tau_frac}")
    if cfg.warmup_frac is not None and not 0.0 <= cfg.warmup_frac < 1.0:
        raise ConfigError(f"config key 'warmup_frac': must be in [0, 1), got {cfg.warmup_frac}")
    if not 0.0 <= cfg.target_mom <= 1.0:
        raise ConfigError(f"config key 'target_mom': must be in [0, 1], got {cfg.target_mom}")
    if not 0.0 < cfg.min_crop <= 1.0:
        raise ConfigError(f"config key 'min_crop': must be in (0, 1], got {cfg.min_crop}")
    if cfg.warmup_frac is None and cfg.warmup_epochs > cfg.epochs:  # warmup_frac wins over warmup_epochs
        raise ConfigError(f"config key 'warmup_epochs': {cfg.warmup_epochs} exceeds epochs={cfg.epochs}")
    width = cfg.embed_dim or VIT_PRESETS[cfg.encoder].embed_dim
    heads = cfg.num_heads or VIT_PRESETS[cfg.encoder].num_heads
    if width % heads or width % 4:
        raise ConfigError(f"config key 'embed_dim': {width} must be divisible by num_heads={heads} and by 4")
    if cfg.decoder_embed_dim % cfg.decoder_num_heads or cfg.decoder_embed_dim % 4:
        raise ConfigError(
            f"config key 'decoder_embed_dim': {cfg.decoder_embed_dim} must be divisible by "
            f"decoder_num_heads={cfg.decoder_num_heads} and by 4"
        )
    depth = cfg.depth or VIT_PRESETS[cfg.encoder].depth
    if cfg.target_depth is not None and cfg.target_depth > depth:
        raise ConfigError(f"config key 'target_depth': {cfg.target_depth} exceeds encoder depth {depth}")
    _validate_methods(cfg, depth)
    if cfg.env.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", cfg.env.device):
        raise ConfigError(f"config key 'env.device': {cfg.env.device!r} is not auto, cpu, cuda or cuda:N")
    _validate_scale_out(cfg)


def _validate_methods(cfg: PretrainConfig, depth: int) -> None:
    """Keys of the chosen method (pcae / data2vec) and of the collapse guard."""
    if cfg.method == "pcae":
        _validate_pcae(cfg, depth)
    if cfg.method == "data2vec":
        d = cfg.data2vec
        _positive("data2vec.top_k", d.top_k)
        _positive("data2vec.decoder_layers", d.decoder_layers)
        if d.decoder_kernel < 1 or d.decoder_kernel % 2 == 0:
            raise ConfigError(f"config key 'data2vec.decoder_kernel': must be odd and >= 1, got {d.decoder_kernel}")
        if d.decoder_groups < 1 or cfg.decoder_embed_dim % d.decoder_groups:
            raise ConfigError(
                f"config key 'data2vec.decoder_groups': {d.decoder_groups} must divide "
                f"decoder_embed_dim={cfg.decoder_embed_dim}"
            )
    if cfg.method == "simmim":
        _validate_simmim(cfg)
    if cfg.method == "conmim":
        _validate_conmim(cfg)
    if cfg.method == "ijepa":
        _validate_ijepa(cfg)
    c = cfg.collapse
    if not 0.0 < c.threshold <= 1.0:
        raise ConfigError(f"config key 'collapse.threshold': must be in (0, 1], got {c.threshold}")
    _positive("collapse.patience", c.patience)


def _validate_simmim(cfg: PretrainConfig) -> None:
    s = cfg.simmim
    _positive("simmim.mask_patch", s.mask_patch)
    if cfg.grid_size % s.mask_patch:
        raise ConfigError(f"config key 'simmim.mask_patch': {s.mask_patch} must divide grid_size={cfg.grid_size}")
    if not 0.0 < s.mask_ratio < 1.0:
        raise ConfigError(f"config key 'simmim.mask_ratio': must be in (0, 1), got {s.mask_ratio}")
    cells = (cfg.grid_size // s.mask_patch) ** 2
    if math.ceil(cells * s.mask_ratio) >= cells:  # the authors' count; one cell must stay visible
        raise ConfigError(f"config key 'simmim.mask_ratio': {s.mask_ratio} hides all {cells} mask cells "
                          f"of {s.mask_patch}x{s.mask_patch} tokens; lower it or use a smaller mask_patch")


def _validate_conmim(cfg: PretrainConfig) -> None:
    c, n = cfg.conmim, cfg.grid_size**2
    _choice("conmim.perturb", c.perturb, CONMIM_PERTURB)
    if cfg.target_mode not in CONMIM_TARGET_MODES:
        raise ConfigError(f"config key 'target_mode': method=conmim takes {', '.join(CONMIM_TARGET_MODES)}, "
                          f"got {cfg.target_mode!r}")
    if cfg.grid_size < 2:
        raise ConfigError(f"config key 'grid_size': blockwise masks need at least 2x2, got {cfg.grid_size}")
    if not 0.0 < c.mask_frac < 1.0 or not 1 <= round(c.mask_frac * n) < n:
        raise ConfigError(f"config key 'conmim.mask_frac': must hide 1 to {n - 1} of {n} patches, got {c.mask_frac}")
    if not 0.0 < c.min_block_frac <= c.mask_frac:
        raise ConfigError(f"config key 'conmim.min_block_frac': must be in (0, mask_frac], got {c.min_block_frac}")
    if not 0.0 < c.min_aspect <= 1.0:
        raise ConfigError(f"config key 'conmim.min_aspect': must be in (0, 1], got {c.min_aspect}")
    for key in ("tau", "proj_hidden_dim", "proj_dim", "proj_depth"):
        _positive(f"conmim.{key}", getattr(c, key))
    if not 0.0 <= c.target_mom <= 1.0:
        raise ConfigError(f"config key 'conmim.target_mom': must be in [0, 1], got {c.target_mom}")


def _validate_ijepa(cfg: PretrainConfig) -> None:
    from latentmim.masking.multiblock import (
        MultiBlockMasker,  # the masker checks min_keep against the grid
    )

    j = cfg.ijepa
    for key in ("enc_mask_scale", "pred_mask_scale", "aspect_ratio"):
        value, capped = list(getattr(j, key)), key != "aspect_ratio"
        if len(value) != 2 or not 0.0 < value[0] <= value[1] or (capped and value[1] > 1.0):
            raise ConfigError(f"config key 'ijepa.{key}': must be [low, high] with 0 < low <= high"
                              f"{' <= 1' if capped else ''}, got {value}")
    for key in ("num_pred_masks", "pred_depth", "pred_emb_dim", "pred_num_heads"):
        _positive(f"ijepa.{key}", getattr(j, key))
    heads = j.pred_num_heads or cfg.num_heads or VIT_PRESETS[cfg.encoder].num_heads
    if j.pred_emb_dim % heads or j.pred_emb_dim % 4:
        raise ConfigError(f"config key 'ijepa.pred_emb_dim': {j.pred_emb_dim} must be divisible by the "
                          f"predictor's {heads} heads and by 4")
    if not 0.0 <= j.target_mom <= j.target_mom_end <= 1.0:
        raise ConfigError(f"config keys 'ijepa.target_mom', 'ijepa.target_mom_end': need 0 <= start <= end <= 1, "
                          f"got {j.target_mom}, {j.target_mom_end}")
    try:
        MultiBlockMasker(cfg.grid_size, ctx_scale=tuple(j.enc_mask_scale), trg_scale=tuple(j.pred_mask_scale),
                         aspect=tuple(j.aspect_ratio), num_targets=j.num_pred_masks, min_keep=j.min_keep,
                         allow_overlap=j.allow_overlap, reach_edges=j.reach_edges)
    except ValueError as err:
        raise ConfigError(f"config key 'ijepa.min_keep': {err}") from None


def _validate_pcae(cfg: PretrainConfig, depth: int) -> None:
    p = cfg.pcae
    if not 0.0 < p.keep <= 1.0:
        raise ConfigError(f"config key 'pcae.keep': must be in (0, 1], got {p.keep}")
    if not 0.0 <= p.target_mom <= 1.0:
        raise ConfigError(f"config key 'pcae.target_mom': must be in [0, 1], got {p.target_mom}")
    _positive("pcae.drop_stages", p.drop_stages)
    if p.drop_blocks is not None:
        bad = [b for b in p.drop_blocks if not 0 <= b < depth]
        if bad or len(set(p.drop_blocks)) != len(p.drop_blocks):
            raise ConfigError(
                f"config key 'pcae.drop_blocks': {list(p.drop_blocks)} must be distinct blocks in [0, {depth - 1}]"
            )
    elif p.drop_case not in DROP_CASES:
        raise ConfigError(f"config key 'pcae.drop_case': {p.drop_case} is not one of {', '.join(map(str, DROP_CASES))}")
    elif p.drop_case != 5 and p.drop_stages > depth:
        raise ConfigError(f"config key 'pcae.drop_stages': {p.drop_stages} exceeds encoder depth {depth}")


def _validate_scale_out(cfg: PretrainConfig) -> None:
    """Process layout, Slurm and logging keys (runtime/distributed.py, engine/slurm.py)."""
    _choice("env.cluster", cfg.env.cluster, CLUSTERS)
    _choice("env.backend", cfg.env.backend, BACKENDS)
    for key in ("ngpu", "world_size", "slurm_timeout"):
        _positive(f"env.{key}", getattr(cfg.env, key))
    _positive("env.mem_gb", cfg.env.mem_gb, allow_zero=True)
    if cfg.env.fsdp and cfg.env.precision == "fp16":
        raise ConfigError("config key 'env.fsdp': FSDP runs use env.precision=bf16 or fp32 (fp16 loss scaling is not sharded)")


def to_yaml(cfg: PretrainConfig) -> str:
    """The resolved configuration as YAML (saved next to every run)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def _literal(node: object) -> object:
    """A copy of a plain container with every ``${`` escaped (OmegaConf reads ``\\${`` as text)."""
    if isinstance(node, dict):
        return {k: _literal(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_literal(v) for v in node]
    if isinstance(node, str):
        return node.replace("${", "\\${")
    return node


def config_from_checkpoint(saved: object, overrides: Sequence[str] = (), source: str = "checkpoint") -> PretrainConfig:
    """Rebuild the configuration stored in a checkpoint, with ``key=value`` overrides on top.

    A checkpoint is data, not configuration code: its strings are taken literally, so a crafted
    ``${oc.env:SECRET}`` is never resolved (escaped, it stays that text).

    Args:
        saved: the stored configuration (a mapping of keys to values).
        overrides: ``key=value`` changes.
        source: the file it came from, named in errors.

    Raises:
        ConfigError: one line naming ``source`` and the key: not a mapping, an unknown key, a
            wrong type, or a value that fails :func:`validate`.
    """
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"expected key=value overrides, got '{bad[0]}'")
    if not isinstance(saved, dict):
        raise ConfigError(f"'{source}': the stored config is a {type(saved).__name__}, not a mapping of keys")
    try:
        saved = {k: v for k, v in saved.items() if k not in RETIRED_KEYS}
        cfg = OmegaConf.merge(OmegaConf.structured(PretrainConfig), _literal(saved),
                              OmegaConf.from_dotlist(list(overrides)))
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(f"'{source}': {_hydra_message(err)}") from None
    assert isinstance(obj, PretrainConfig)
    try:
        validate(obj)
    except ConfigError as err:
        raise ConfigError(f"'{source}': {err}") from None
    return obj


def read_run_config(path: str | Path) -> PretrainConfig:
    """The ``config.yaml`` of a run folder, read as data (no interpolation) and validated.

    Raises:
        ConfigError: one line naming the file: unreadable, not YAML, or a bad key or value.
    """
    try:
        saved = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"'{path}' cannot be read as a config: {str(err).splitlines()[0]}") from None
    return config_from_checkpoint(saved, (), str(path))

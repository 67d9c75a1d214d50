"""Parse ``key=value`` arguments of ``latentmim eval SUITE`` into its dataclass, then validate.

OmegaConf structured configs give strict keys and types; every failure (a misspelt key, a wrong
type, a value out of range) becomes one :class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Sequence
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from latentmim.config.describe import all_keys
from latentmim.config.errors import ConfigError
from latentmim.config.eval_schema import (
    DENSE_FEATURES,
    PE_MODES,
    TRANSFER_DATASETS,
    VIDEO_DATASETS,
    AllEvalConfig,
    EvalCommon,
    FewshotOptions,
    FinetuneOptions,
    KnnOptions,
    LinearOptions,
    SegmentOptions,
    VideoOptions,
)
from latentmim.config.load import DATASETS

T = TypeVar("T")

FEATURES = ("avgpool_prenorm", "avgpool", "cls")
PRECISIONS = ("fp32", "bf16", "fp16")
PROTOCOLS = ("both", "loo", "weighted")
SEARCH_MODES = ("auto", "exact", "bf16")  # neighbour searches of probing.knn.top_similar
LINEAR_MODES = ("augment", "cached")
# What ``eval all suites=`` accepts: auto, or any suite whose options it nests (knn.*, linear.*, ...).
SUITES = ("auto", *(name for name, kind in typing.get_type_hints(AllEvalConfig).items()
                    if dataclasses.is_dataclass(kind) and name not in typing.get_type_hints(EvalCommon)))


def _list_keys(cls: type, prefix: str = "") -> set[str]:
    """Dotted keys whose type is a list (they accept ``a,b,c`` on the command line)."""
    out: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out |= _list_keys(kind, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        elif typing.get_origin(kind) is list:
            out.add(f"{prefix}{f.name}")
    return out


def _message(err: OmegaConfBaseException, cls: type, prefix: str = "") -> str:
    first = str(err).strip().splitlines()[0]
    key = getattr(err, "full_key", None)
    if key and re.search(r"Key '[^']+' (is )?not in", str(err)):
        close = difflib.get_close_matches(str(key), all_keys(cls), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        return f"unknown config key '{prefix}{key}'{hint}"
    return f"config key '{prefix}{key}': {first}" if key else first


def _dotlist(cls: type, args: Sequence[str]) -> list[str]:
    """Check ``key=value`` form and wrap ``a,b,c`` in brackets for list-typed keys."""
    out = []
    lists = _list_keys(cls)
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value arguments, got '{arg}'")
        key, value = arg.split("=", 1)
        if key in lists and not value.startswith("["):
            value = f"[{value}]" if value else "[]"
        out.append(f"{key}={value}")
    return out


def parse_eval_config(cls: type[T], args: Sequence[str], base: dict | None = None, prefix: str = "") -> T:
    """Build and validate a suite's configuration from ``key=value`` strings.

    Lists can be given as ``shots=1,2,4`` or ``shots=[1,2,4]``.

    Args:
        cls: the suite's configuration dataclass.
        args: ``key=value`` strings (they win over ``base``).
        base: values to start from (``latentmim eval all`` passes the common keys).
        prefix: how the keys are spelt on the command line (``"knn."`` under ``eval all``), for
            error messages.

    Raises:
        ConfigError: not key=value, unknown key, wrong type, missing checkpoint, bad value.
    """
    dotlist = _dotlist(cls, args)
    try:
        node = OmegaConf.merge(OmegaConf.structured(cls), base or {}, OmegaConf.from_dotlist(dotlist))
        if OmegaConf.is_missing(node, "checkpoint"):
            raise ConfigError("missing checkpoint=PATH")
        obj = OmegaConf.to_object(node)
    except OmegaConfBaseException as err:
        raise ConfigError(_message(err, cls, prefix)) from None
    try:
        validate_eval_config(obj)
    except ConfigError as err:
        raise ConfigError(str(err).replace("config key '", f"config key '{prefix}", 1)) from None
    return obj  # type: ignore[return-value]


def _choice(key: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {', '.join(map(str, allowed))}")


def _at_least(key: str, value: float | None, low: float, strict: bool = False) -> None:
    if value is None:
        return
    if value < low or (strict and value == low):
        raise ConfigError(f"config key '{key}': must be {'>' if strict else '>='} {low}, got {value}")


def _fraction(key: str, value: float, high_open: bool = False) -> None:
    if not (0.0 <= value < 1.0 if high_open else 0.0 <= value <= 1.0):
        raise ConfigError(f"config key '{key}': must be in [0, 1{')' if high_open else ']'}, got {value}")


def _validate_common(cfg: EvalCommon) -> None:
    if not cfg.checkpoint:
        raise ConfigError("config key 'checkpoint': empty path")
    if cfg.precision is not None:
        _choice("precision", cfg.precision, PRECISIONS)
    if cfg.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", cfg.device):
        raise ConfigError(f"config key 'device': {cfg.device!r} is not auto, cpu, cuda or cuda:N")
    for key in ("train_images", "val_images", "synthetic.num_train", "synthetic.num_val",
                "synthetic.image_size"):
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        _at_least(key, node, 1)  # type: ignore[arg-type]
    _at_least("workers", cfg.workers, 0)
    _at_least("threads", cfg.threads, 0)
    _at_least("seed", cfg.seed, 0)


def _validate_knn(o: KnnOptions, p: str) -> None:
    _choice(f"{p}feature", o.feature, FEATURES)
    _choice(f"{p}protocol", o.protocol, PROTOCOLS)
    _choice(f"{p}search", o.search, SEARCH_MODES)
    _at_least(f"{p}k", o.k, 1)
    _at_least(f"{p}temperature", o.temperature, 0.0, strict=True)
    _at_least(f"{p}batch_size", o.batch_size, 1)


def _validate_linear(o: LinearOptions, p: str) -> None:
    _choice(f"{p}mode", o.mode, LINEAR_MODES)
    _choice(f"{p}feature", o.feature, FEATURES)
    for key in ("epochs", "batch_size", "eval_freq"):
        _at_least(f"{p}{key}", getattr(o, key), 1)
    for key in ("warmup_epochs", "min_lr", "weight_decay", "momentum", "trust_coefficient", "ckpt_steps"):
        _at_least(f"{p}{key}", getattr(o, key), 0.0)
    _at_least(f"{p}blr", o.blr, 0.0, strict=True)
    _at_least(f"{p}lr", o.lr, 0.0, strict=True)
    if o.warmup_epochs > o.epochs:
        raise ConfigError(f"config key '{p}warmup_epochs': {o.warmup_epochs} exceeds epochs={o.epochs}")
    if not 0.0 < o.min_crop <= 1.0:
        raise ConfigError(f"config key '{p}min_crop': must be in (0, 1], got {o.min_crop}")


def _validate_finetune(o: FinetuneOptions, p: str) -> None:
    for key in ("epochs", "batch_size", "accum_iter", "eval_freq", "recount"):
        _at_least(f"{p}{key}", getattr(o, key), 1)
    for key in ("warmup_epochs", "min_lr", "weight_decay", "mixup", "cutmix", "throughput_batches", "ckpt_steps"):
        _at_least(f"{p}{key}", getattr(o, key), 0)
    _at_least(f"{p}blr", o.blr, 0.0, strict=True)
    _at_least(f"{p}lr", o.lr, 0.0, strict=True)
    _at_least(f"{p}clip_grad", o.clip_grad, 0.0, strict=True)
    if o.token_drop_blocks is not None and (not o.token_drop_blocks or min(o.token_drop_blocks) < 0):
        raise ConfigError(f"config key '{p}token_drop_blocks': {o.token_drop_blocks} must be a non-empty list of blocks >= 0")
    for key in ("mixup_prob", "mixup_switch_prob", "reprob", "drop_path"):
        _fraction(f"{p}{key}", getattr(o, key))
    _fraction(f"{p}smoothing", o.smoothing, high_open=True)
    _fraction(f"{p}token_drop", o.token_drop, high_open=True)
    if not 0.0 < o.layer_decay <= 1.0:
        raise ConfigError(f"config key '{p}layer_decay': must be in (0, 1], got {o.layer_decay}")
    if not 0.0 < o.min_crop <= 1.0:
        raise ConfigError(f"config key '{p}min_crop': must be in (0, 1], got {o.min_crop}")
    if o.warmup_epochs > o.epochs:
        raise ConfigError(f"config key '{p}warmup_epochs': {o.warmup_epochs} exceeds epochs={o.epochs}")
    _choice(f"{p}remode", o.remode, ("pixel", "rand", "const"))
    if (o.mixup > 0 or o.cutmix > 0) and o.batch_size % 2:
        raise ConfigError(f"config key '{p}batch_size': Mixup/CutMix need an even batch, got {o.batch_size}")


def _validate_fewshot(o: FewshotOptions, p: str) -> None:
    for name in o.datasets:
        _choice(f"{p}datasets", name, (*DATASETS, *TRANSFER_DATASETS))
    if not o.shots:
        raise ConfigError(f"config key '{p}shots': give at least one shot count")
    if not o.seeds:
        raise ConfigError(f"config key '{p}seeds': give at least one seed")
    for k in o.shots:
        _at_least(f"{p}shots", k, 1)
    for s in o.seeds:
        _at_least(f"{p}seeds", s, 0)
    _choice(f"{p}feature", o.feature, FEATURES)
    _at_least(f"{p}C", o.C, 0.0, strict=True)
    _at_least(f"{p}max_iter", o.max_iter, 1)
    _at_least(f"{p}batch_size", o.batch_size, 1)


def _validate_segment(o: SegmentOptions, p: str) -> None:
    if not o.clusters or min(o.clusters) < 2:
        raise ConfigError(f"config key '{p}clusters': need cluster counts >= 2, got {list(o.clusters)}")
    _at_least(f"{p}num_images", o.num_images, 1)
    _choice(f"{p}feature", o.feature, DENSE_FEATURES)
    _choice(f"{p}pe_mode", o.pe_mode, PE_MODES)
    _at_least(f"{p}input_size", o.input_size, 0, strict=True)
    _at_least(f"{p}figures", o.figures, 0)
    _at_least(f"{p}probe_images", o.probe_images, 0)
    if o.probe_images and o.images:
        raise ConfigError(f"config key '{p}probe_images': the linear probe needs ground-truth classes; "
                          "image files have none (leave images empty, dataset=synthetic)")


def _validate_video(o: VideoOptions, p: str, dataset: str | None) -> None:
    if o.davis_root is None and dataset not in (None, *VIDEO_DATASETS):
        raise ConfigError(f"config key 'dataset': {dataset!r} has no videos; give {p}davis_root=PATH "
                          "(a DAVIS-2017 folder) or dataset=synthetic_video")
    for key in ("num_videos", "n_last_frames", "topk"):
        _at_least(f"{p}{key}", getattr(o, key), 1)
    _at_least(f"{p}temperature", o.temperature, 0.0, strict=True)
    _at_least(f"{p}radius", o.radius, 0)
    _at_least(f"{p}input_size", o.input_size, 0, strict=True)
    _at_least(f"{p}bound_th", o.bound_th, 0.0, strict=True)
    _choice(f"{p}feature", o.feature, DENSE_FEATURES)
    _choice(f"{p}pe_mode", o.pe_mode, PE_MODES)


def validate_eval_config(cfg: object) -> None:
    """Semantic checks of any suite configuration. Raises :class:`ConfigError`."""
    assert isinstance(cfg, EvalCommon)
    _validate_common(cfg)
    if isinstance(cfg, AllEvalConfig):
        for suite in cfg.suites:
            _choice("suites", suite, SUITES)
        names = [c for c in cfg.checkpoint.split(",") if c]
        if cfg.names and len(cfg.names) != len(names):
            raise ConfigError(f"config key 'names': {len(cfg.names)} names for {len(names)} checkpoints")
        _validate_knn(cfg.knn, "knn.")
        _validate_linear(cfg.linear, "linear.")
        _validate_finetune(cfg.finetune, "finetune.")
        _validate_fewshot(cfg.fewshot, "fewshot.")
        _validate_segment(cfg.segment, "segment.")
        # The dataset must have videos only when video is asked for by name (auto runs it on DAVIS only).
        _validate_video(cfg.video, "video.", cfg.dataset if "video" in cfg.suites else None)
        return
    if isinstance(cfg, KnnOptions):
        _validate_knn(cfg, "")
    if isinstance(cfg, LinearOptions):
        _validate_linear(cfg, "")
    if isinstance(cfg, FinetuneOptions):
        _validate_finetune(cfg, "")
    if isinstance(cfg, FewshotOptions):
        _validate_fewshot(cfg, "")
    if isinstance(cfg, SegmentOptions):
        _validate_segment(cfg, "")
    if isinstance(cfg, VideoOptions):
        _validate_video(cfg, "", cfg.dataset)

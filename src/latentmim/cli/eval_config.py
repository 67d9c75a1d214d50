"""``latentmim eval SUITE --cfg job ...``: the parsed suite configuration, and what it inherits.

Prints the suite's configuration as YAML (parsed and validated exactly as a real run would),
then, as YAML comments, the dataset settings that its ``null`` keys resolve to from the
checkpoint's pre-training config. Nothing is evaluated.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from latentmim.cli.help import eval_schema
from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.data.errors import DataError


def parsed_eval_config(suite: str, args: list[str]) -> object:
    """The validated configuration object of ``latentmim eval SUITE args``."""
    if suite == "all":
        from latentmim.eval.compare import split_suite_args

        args = split_suite_args(list(args))[0]
    cfg = parse_eval_config(eval_schema(suite), args)
    if suite == "segment":
        from latentmim.eval.dense.segment import validate_segment

        validate_segment(cfg)  # type: ignore[arg-type]
    if suite == "video":
        from latentmim.eval.dense.video import validate_video

        validate_video(cfg)  # type: ignore[arg-type]
    return cfg


def print_eval_config(suite: str, args: list[str]) -> int:
    cfg = parsed_eval_config(suite, args)
    print(OmegaConf.to_yaml(OmegaConf.structured(cfg)), end="")
    if suite == "all":
        return 0
    from latentmim.eval.data import resolve_data
    from latentmim.eval.session import resolve_precision
    from latentmim.interop.load import load_pretrained

    try:
        loaded = load_pretrained(cfg.checkpoint)  # type: ignore[attr-defined]
        spec = resolve_data(cfg, loaded)
    except (ConfigError, DataError) as err:
        print(f"# not resolved from the checkpoint: {err}")
        return 0
    print(f"# resolved from checkpoint {cfg.checkpoint}:")  # type: ignore[attr-defined]
    for key, value in vars(spec).items():
        print(f"#   {key}: {value}")
    print(f"#   precision: {resolve_precision(cfg.precision, loaded)}")  # type: ignore[attr-defined]
    return 0

"""``latentmim eval SUITE --cfg job ...``: the parsed suite configuration, and what it inherits.

Prints the suite's configuration as YAML (parsed and validated exactly as a real run would),
then, as YAML comments, the dataset settings that its ``null`` keys resolve to from the
checkpoint's pre-training config. Nothing is evaluated.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.data.errors import DataError
from latentmim.eval.suites import Suite


def print_eval_config(suite: Suite, args: list[str]) -> int:
    """Print ``latentmim eval SUITE args``'s configuration; returns the exit code (0)."""
    cfg = parse_eval_config(suite.config, args)
    print(OmegaConf.to_yaml(OmegaConf.structured(cfg)), end="")
    if suite.options is None:  # eval all: several checkpoints, each resolved by its own suites
        return 0
    from latentmim.eval.data import resolve_data
    from latentmim.eval.session import resolve_precision
    from latentmim.interop.load import load_pretrained

    try:
        loaded = load_pretrained(cfg.checkpoint)
        spec = resolve_data(cfg, loaded)
    except (ConfigError, DataError) as err:
        print(f"# not resolved from the checkpoint: {err}")
        return 0
    print(f"# resolved from checkpoint {cfg.checkpoint}:")
    for key, value in vars(spec).items():
        print(f"#   {key}: {value}")
    print(f"#   precision: {resolve_precision(cfg.precision, loaded)}")
    return 0

"""``latentmim eval SUITE [key=value ...]``: dispatch to one evaluation's command module.

Each module exposes ``run(args: list[str]) -> int`` and raises ConfigError/DataError for user
mistakes (printed as one line with exit code 2 by :mod:`latentmim.cli.main`).
"""

from __future__ import annotations

import importlib

from latentmim.config.errors import ConfigError

SUITES = {
    "knn": "latentmim.cli.eval_knn",
    "linear": "latentmim.cli.eval_linear",
    "finetune": "latentmim.cli.eval_finetune",
    "fewshot": "latentmim.cli.eval_fewshot",
    "segment": "latentmim.cli.eval_segment",
    "video": "latentmim.cli.eval_video",
    "all": "latentmim.cli.eval_all",
}


def eval_command(args: list[str], show_help: bool = False, cfg_mode: str | None = None) -> int:
    """Run one suite; ``show_help`` prints its keys, ``cfg_mode`` its parsed configuration."""
    if show_help or cfg_mode:
        from latentmim.cli.help import eval_help, eval_index

        if show_help:
            print(eval_help(args[0]) if args and args[0] in SUITES else eval_index())
            return 0
        if not args or args[0] not in SUITES:
            raise ConfigError(f"eval: --cfg needs a suite: one of {', '.join(SUITES)}")
        from latentmim.cli.eval_config import print_eval_config

        return print_eval_config(args[0], args[1:])
    if not args or args[0] not in SUITES:
        got = args[0] if args else ""
        raise ConfigError(f"eval: unknown suite '{got}'; choose one of {', '.join(SUITES)}")
    try:
        module = importlib.import_module(SUITES[args[0]])
    except ModuleNotFoundError as err:
        if err.name == SUITES[args[0]]:
            raise ConfigError(f"eval: suite '{args[0]}' is not available in this version") from None
        raise
    return module.run(list(args[1:]))

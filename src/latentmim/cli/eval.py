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


def eval_command(args: list[str]) -> int:
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

"""``latentmim eval SUITE [--cfg job] [key=value ...]``, and ``latentmim knn`` (= ``eval knn``).

:data:`latentmim.eval.suites.SUITES` says what each suite parses, which optional packages it
needs, how it runs and how its results are printed. User mistakes raise ConfigError/DataError
(printed as one line with exit code 2 by :mod:`latentmim.cli.main`).
"""

from __future__ import annotations

import sys

from latentmim.config.errors import ConfigError
from latentmim.config.eval_load import parse_eval_config
from latentmim.eval.suites import SUITES, Suite


def find_suite(args: list[str], why: str) -> Suite:
    """The suite named by ``args[0]``.

    Raises:
        ConfigError: no suite, or an unknown one (``why`` says what was being done).
    """
    if not args or args[0] not in SUITES:
        got = f" '{args[0]}'" if args else ""
        raise ConfigError(f"eval: {why}{got}; choose one of {', '.join(SUITES)}")
    return SUITES[args[0]]


def eval_command(args: list[str], show_help: bool = False, cfg_mode: str | None = None) -> int:
    """Run one suite; ``show_help`` prints its keys, ``cfg_mode`` its parsed configuration."""
    if show_help:
        from latentmim.cli.help import eval_help, eval_index

        print(eval_help(args[0]) if args and args[0] in SUITES else eval_index())
        return 0
    if cfg_mode:
        from latentmim.cli.eval_config import print_eval_config

        return print_eval_config(find_suite(args, "--cfg needs a suite"), args[1:])
    suite = find_suite(args, "unknown suite" if args else "missing suite")
    cfg = parse_eval_config(suite.config, args[1:])
    suite.check_installed()
    from latentmim.training.errors import NonFiniteLoss

    try:
        results = suite.run(cfg)
    except NonFiniteLoss as err:  # a diverged training run (fine-tuning, linear probe)
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 1
    return suite.show(results)

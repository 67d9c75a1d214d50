"""``--help`` pages generated from the configuration schemas, and the named-config listing.

Each command's page lists every key of its dataclass (type, value in the chosen config, the
field's one-line comment) through :mod:`latentmim.config.describe`, so adding a field to a
schema adds it to ``--help`` and to shell completion with nothing else to edit.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable

from latentmim.config.describe import Group, all_keys, describe, format_groups
from latentmim.config.extras import PACKAGES
from latentmim.eval.suites import EXTRA, SUITES

HELP_FLAGS = ("-h", "--help")


def wants_help(args: list[str]) -> bool:
    return any(a in HELP_FLAGS for a in args)


def named_configs() -> dict[str, str]:
    """Named configs (``--config-name``) with the one-line purpose from their first comment."""
    out = {}
    for entry in sorted(importlib.resources.files("latentmim.configs").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            head = []  # the leading comment block, up to its first sentence
            for line in entry.read_text().splitlines():
                if not line.startswith("#"):
                    break
                head.append(line.lstrip("# ").strip())
            text = " ".join(head)
            out[entry.name[: -len(".yaml")]] = text.split(". ")[0].rstrip(".")
    return out


def pretrain_groups(config_name: str = "demo") -> list[Group]:
    """Groups of ``latentmim pretrain --help`` with the values of ``config_name``."""
    from latentmim.config.load import compose_config
    from latentmim.config.schema import PretrainConfig

    return describe(PretrainConfig, compose_config([], config_name), default_title="method")


def pretrain_help(config_name: str = "demo") -> str:
    configs = "\n".join(f"  {n:<10} {purpose}" for n, purpose in named_configs().items())
    return (
        "usage: latentmim pretrain [--config-name NAME] [--cfg job] [-m] [key=value ...]\n\n"
        f"Pre-train an encoder. Values below are those of config '{config_name}' "
        "(--config-name NAME --help shows another's).\n"
        "  --cfg job   print the composed, validated configuration as YAML and exit\n"
        "  -m, --multirun   sweep comma-separated values, one run each: lr=5e-4,1e-3 num_vis=8,12\n\n"
        f"named configs (--config-name):\n{configs}\n\n"
        + format_groups(pretrain_groups(config_name))
    )


def eval_help(suite: str) -> str:
    """``latentmim eval SUITE --help``: the suite's keys (``eval all``: with every suite's, nested)."""
    entry = SUITES[suite]
    alias = "\n       latentmim knn ...   (the same command)" if suite == "knn" else ""
    needs = (f"needs {', '.join(PACKAGES[m] for m in entry.needs)}: pip install 'latentmim[{EXTRA}]'\n"
             if entry.needs else "")
    return (f"usage: latentmim eval {suite} checkpoint=PATH [--cfg job] [key=value ...]{alias}\n\n"
            f"{entry.summary}\n{needs}"
            "  --cfg job   print the parsed configuration (and what it inherits from the checkpoint) and exit\n"
            "null dataset settings inherit the checkpoint's pre-training data.\n\n"
            + format_groups(describe(entry.config, default_title=f"{suite} options")))


def eval_index() -> str:
    """``latentmim eval --help``: the suites, one line each."""
    suites = "\n".join(f"  {s.name:<9} {s.summary}" for s in SUITES.values())
    return ("usage: latentmim eval SUITE checkpoint=PATH [key=value ...]\n\n"
            f"suites:\n{suites}\n\n'latentmim eval SUITE --help' lists every key of a suite.")


def ablate_help() -> str:
    from latentmim.ablate.plan import AblateOptions
    from latentmim.ablate.tables import TABLES

    tables = "\n".join(f"  {t.name:<10} {t.title}" for t in TABLES.values())
    return ("usage: latentmim ablate TABLE [option=value ...] [pretrain key=value ...]\n"
            "       latentmim ablate list\n\n"
            f"tables:\n{tables}\n\n" + format_groups(describe(AblateOptions, default_title="ablate options"))
            + "\n\nEvery other key=value overrides the config of every row (see 'latentmim pretrain --help').\n"
            "Running the same command again continues the table (finished rows are kept).")


def export_help() -> str:
    from latentmim.cli.export import ExportOptions

    return ("usage: latentmim export checkpoint=PATH output=DIR [option=value ...] [pretrain key=value ...]\n\n"
            "Write a timm / Hugging Face folder of the encoder and check it loads in timm.\n\n"
            + format_groups(describe(ExportOptions, default_title="export options")))


HELP: dict[str, Callable[[], str]] = {
    "ablate": ablate_help,
    "export": export_help,
}


def command_keys(command: str, suite: str | None = None) -> list[str]:
    """Every key a command accepts (for completion and for tests)."""
    from latentmim.config.schema import PretrainConfig

    if command == "pretrain":
        return all_keys(PretrainConfig)
    if command == "knn":  # = eval knn
        return all_keys(SUITES["knn"].config)
    if command == "eval" and suite:
        return all_keys(SUITES[suite].config)
    if command == "ablate":
        from latentmim.ablate.plan import AblateOptions

        return all_keys(AblateOptions)
    if command == "export":
        from latentmim.cli.export import ExportOptions

        return all_keys(ExportOptions)
    return []

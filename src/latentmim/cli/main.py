"""``latentmim`` command line: ``latentmim COMMAND [--config-name NAME] [key=value ...]``.

User mistakes (a misspelt key, a wrong type, a missing path) print one line and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from latentmim.config.errors import ConfigError
from latentmim.data.errors import DataError

USAGE = """usage: latentmim COMMAND [--config-name NAME] [key=value ...]

commands:
  pretrain   pre-train (default config: demo; --config-name lmim = the paper's run; method=lmim|mae|pcae|data2vec)
  knn        NN monitor on a checkpoint: latentmim knn checkpoint=PATH [key=value ...]
  eval       evaluations: latentmim eval knn|linear|finetune|fewshot|segment|video|all checkpoint=PATH ...
  ablate     reproduce a table of the paper at small scale: latentmim ablate TABLE [key=value ...]
  export     timm / Hugging Face style export: latentmim export checkpoint=PATH output=DIR

examples:
  latentmim pretrain
  latentmim pretrain encoder=vit_base decoder_depth=3 dataset=imagenet data_path=/data/imagenet
  latentmim knn checkpoint=outputs/demo/checkpoint_latest.pth
"""


# Commands living in their own module, each exposing ``run(args: list[str]) -> int``.
OPTIONAL_COMMANDS = {"ablate": "latentmim.cli.ablate", "export": "latentmim.cli.export"}


def split_config_name(args: Sequence[str], default: str) -> tuple[str, list[str]]:
    """Pull ``--config-name NAME`` / ``--config-name=NAME`` out of the arguments."""
    name, rest, it = default, [], iter(args)
    for a in it:
        if a.startswith("--config-name="):
            name = a.split("=", 1)[1]
        elif a in ("--config-name", "-cn"):
            name = next(it, default)
        else:
            rest.append(a)
    return name, rest


def run_command(command: str, args: Sequence[str]) -> int:
    """Dispatch one command; raises ConfigError/DataError for user mistakes."""
    if command == "pretrain":
        from latentmim.cli.pretrain import pretrain_command

        return pretrain_command(*split_config_name(args, "demo"))
    if command == "knn":
        from latentmim.cli.knn import knn_command

        return knn_command(list(args))
    if command == "eval":
        from latentmim.cli.eval import eval_command

        return eval_command(list(args))
    if command in OPTIONAL_COMMANDS:
        import importlib

        try:
            module = importlib.import_module(OPTIONAL_COMMANDS[command])
        except ModuleNotFoundError as err:
            if err.name == OPTIONAL_COMMANDS[command]:
                raise ConfigError(f"command '{command}' is not available in this version") from None
            raise
        return module.run(list(args))
    raise ConfigError(f"unknown command '{command}'; run 'latentmim --help'")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        return run_command(argv[0], argv[1:])
    except (ConfigError, DataError) as err:
        print(f"latentmim: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("latentmim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

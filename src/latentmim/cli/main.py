"""``latentmim`` command line: ``latentmim COMMAND [--config-name NAME] [--cfg job] [-m] [key=value ...]``.

``latentmim COMMAND --help`` lists every key of the command's schema (generated from it);
``--cfg job`` prints the composed configuration and exits; ``pretrain -m`` runs a Hydra-style
sweep. User mistakes (a misspelt key, a wrong type, a missing path) print one line and exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from latentmim.config.errors import ConfigError
from latentmim.data.errors import DataError

USAGE = """usage: latentmim COMMAND [--config-name NAME] [--cfg job] [-m] [key=value ...]
       latentmim COMMAND --help         every key of COMMAND, with its type, default and meaning

commands:
  pretrain   pre-train (default config: demo; --config-name lmim = the paper's run; method=lmim|mae|pcae|data2vec)
  knn        k-NN accuracy of a checkpoint (the same as 'latentmim eval knn'): latentmim knn checkpoint=PATH
  eval       evaluations: latentmim eval knn|linear|finetune|fewshot|segment|video|all checkpoint=PATH ...
  ablate     reproduce a table of the paper at small scale: latentmim ablate TABLE [key=value ...]
  export     timm / Hugging Face style export: latentmim export checkpoint=PATH output=DIR
  completion shell completion of commands and keys: eval "$(latentmim completion bash)"

examples:
  latentmim pretrain
  latentmim pretrain encoder=vit_base decoder_depth=3 dataset=imagenet data_path=/data/imagenet
  latentmim pretrain --cfg job epochs=20           # the composed config as YAML, no training
  latentmim pretrain -m lr=5e-4,1e-3 num_vis=8,12  # 4 runs, one after another, plus a summary table
  latentmim knn checkpoint=outputs/demo/checkpoint_latest.pth
"""


CFG_MODES = ("job", "all")  # Hydra's --cfg values that describe the job (there is no hydra section)


@dataclass
class Flags:
    """The Hydra-style flags of a command line, and the ``key=value`` words left."""

    config_name: str
    help: bool = False
    cfg: str | None = None  # --cfg MODE
    multirun: bool = False
    rest: list[str] = field(default_factory=list)


def parse_flags(args: Sequence[str], default: str = "demo") -> Flags:
    """Pull ``--config-name``, ``--help``/``-h``, ``--cfg MODE`` and ``-m``/``--multirun`` out.

    Raises:
        ConfigError: ``--cfg`` without a mode or with one other than job/all.
    """
    flags, it = Flags(default), iter(args)
    for a in it:
        if a.startswith("--config-name="):
            flags.config_name = a.split("=", 1)[1]
        elif a in ("--config-name", "-cn"):
            flags.config_name = next(it, default)
        elif a in ("-h", "--help"):
            flags.help = True
        elif a in ("-m", "--multirun"):
            flags.multirun = True
        elif a in ("--cfg", "-c") or a.startswith("--cfg="):
            mode = a.split("=", 1)[1] if "=" in a else next(it, "")
            if mode not in CFG_MODES:
                raise ConfigError(f"--cfg: expected one of {', '.join(CFG_MODES)}, got '{mode}'")
            flags.cfg = mode
        else:
            flags.rest.append(a)
    return flags


def run_command(command: str, args: Sequence[str]) -> int:
    """Dispatch one command; raises ConfigError/DataError for user mistakes."""
    if command == "pretrain":
        from latentmim.cli.pretrain import pretrain_command

        flags = parse_flags(args, "demo")
        if flags.help:
            from latentmim.cli.help import pretrain_help

            print(pretrain_help(flags.config_name))
            return 0
        return pretrain_command(flags.config_name, flags.rest, cfg_mode=flags.cfg, multirun=flags.multirun)
    if command == "completion":
        from latentmim.cli.completion import completion_command

        return completion_command(list(args))
    flags = parse_flags(args)
    if flags.multirun:
        raise ConfigError(f"-m/--multirun: only 'latentmim pretrain' sweeps, not '{command}'")
    if command in ("eval", "knn"):  # knn: an alias of eval knn
        from latentmim.cli.eval import eval_command

        rest = flags.rest if command == "eval" else ["knn", *flags.rest]
        return eval_command(rest, show_help=flags.help, cfg_mode=flags.cfg)
    if flags.help:
        from latentmim.cli.help import HELP

        if command in HELP:
            print(HELP[command]())
            return 0
    if flags.cfg:
        raise ConfigError(f"--cfg: '{command}' has no configuration to print; try pretrain or eval SUITE")
    if command == "ablate":
        from latentmim.cli.ablate import run as run_ablate

        return run_ablate(list(args))
    if command == "export":
        from latentmim.cli.export import run as run_export

        return run_export(list(args))
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

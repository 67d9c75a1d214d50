"""``latentmim ablate TABLE [option=value ...] [config overrides ...]``: one paper table, end to end.

Tables: collapse, loss, masking, decoder, headline, pcae (``latentmim ablate list`` shows them
with their rows and the model sizes). Options are the fields of
:class:`~latentmim.ablate.plan.AblateOptions`; every other ``key=value`` overrides the config of
every row. Examples::

    latentmim ablate collapse                                  # Fashion-MNIST, ~1 h on 2 CPU cores
    latentmim ablate loss rows=mse,patchdisc budget_min=20
    latentmim ablate decoder model=vit_small dataset=imagenet100 data_path=/data/in100 epochs=100 env.precision=bf16

Re-running the same command continues the table: finished rows are kept, an interrupted row
resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from latentmim.ablate.plan import AblateOptions
from latentmim.ablate.scales import SCALES
from latentmim.ablate.tables import TABLES
from latentmim.config.errors import ConfigError
from latentmim.config.extras import require_all

USAGE = """usage: latentmim ablate TABLE [option=value ...] [config key=value ...]
       latentmim ablate list

tables: collapse, loss, masking, decoder, headline, pcae
options:
  dataset=fashion_mnist   any pretrain dataset (sets the patch grid)
  model=small             tiny | small (2 CPU cores) | vit_small (one GPU) | vit_base (the paper)
  budget_min=60           minutes for the whole table, shared by its rows
  epochs=0                fixed epochs per row (0 = derive them from budget_min)
  output_dir=./outputs/ablate
  rows=                   comma-separated row keys (default: all)
other key=value words override the config of every row (e.g. env.precision=bf16 data_path=...).
Running the same command again continues the table (finished rows are kept). See docs/ablations.md.
"""


def list_tables() -> str:
    """Every table with its rows, and the model sizes."""
    lines = []
    for table in TABLES.values():
        lines.append(f"{table.name}: {table.title}")
        lines += [f"    {row.key:<16} {row.label}" for row in table.rows]
    lines.append("models (model=...):")
    lines += [f"    {s.name:<16} {s.description}" for s in SCALES.values()]
    return "\n".join(lines)


def parse_args(name: str, args: list[str]) -> tuple[AblateOptions, list[str]]:
    """Split ``key=value`` words into typed :class:`AblateOptions` and the rows' config overrides.

    Raises:
        ConfigError: a word without ``=``, an option of the wrong type, or a near-miss of an
            option name (``budet_min``), each as one line naming it.
    """
    names = [f.name for f in dataclasses.fields(AblateOptions)]
    mine, rest = [], []
    for word in args:
        if "=" not in word:
            raise ConfigError(f"ablate {name}: expected key=value, got '{word}'")
        key = word.split("=", 1)[0]
        if key in names:
            mine.append(word)
            continue
        if key in ("job_name", "resume"):  # the table decides where each row runs and resumes
            raise ConfigError(f"ablate {name}: '{key}' is set per row by the table; choose output_dir= instead")
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
        if close:
            raise ConfigError(f"ablate {name}: unknown option '{key}' (did you mean '{close[0]}'?)")
        rest.append(word)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(AblateOptions), OmegaConf.from_dotlist(mine))
        opts = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        msg = str(err).strip().splitlines()[0]
        raise ConfigError(f"ablate {name}: option '{getattr(err, 'full_key', '')}': {msg}") from None
    assert isinstance(opts, AblateOptions)
    return opts, rest


def run(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        from latentmim.cli.help import ablate_help

        print(ablate_help())
        return 0 if args else 2
    if args[0] == "list":
        print(list_tables())
        return 0
    name, rest = args[0], args[1:]
    if name not in TABLES:
        raise ConfigError(f"ablate: unknown table '{name}'; choose one of {', '.join(TABLES)} (or 'list')")
    opts, overrides = parse_args(name, rest)
    if opts.budget_min <= 0:
        raise ConfigError(f"ablate {name}: option 'budget_min' must be > 0, got {opts.budget_min}")
    if opts.epochs < 0:
        raise ConfigError(f"ablate {name}: option 'epochs' must be >= 0, got {opts.epochs}")
    if opts.seeds < 1:
        raise ConfigError(f"ablate {name}: option 'seeds' must be >= 1, got {opts.seeds}")
    if opts.segment_images < 0:
        raise ConfigError(f"ablate {name}: option 'segment_images' must be >= 0, got {opts.segment_images}")
    if opts.segment_probe_images < 0:
        raise ConfigError(f"ablate {name}: option 'segment_probe_images' must be >= 0, got {opts.segment_probe_images}")
    if opts.segment_probe_images and not opts.segment_images:
        raise ConfigError(f"ablate {name}: option 'segment_probe_images' needs segment_images > 0 (its val images)")
    # Every table has an LP (logreg) column (scikit-learn) and an NN-vs-time figure (matplotlib);
    # segment_images adds the segmentation suite (SciPy).
    needs = ("sklearn", "matplotlib", *(("scipy",) if opts.segment_images else ()))
    require_all(needs, "eval", f"ablate {name}")
    from latentmim.ablate.runner import run_table  # the training stack, only when running

    out = run_table(name, opts, overrides)
    files = out["files"]
    print(files["markdown"].read_text().rstrip())
    print(f"\ntable: {files['markdown']}\nNN against time: {files['png']}\nall numbers: {files['json']}")
    interrupted = [k for k, r in out["rows"].items() if r.get("status") == "interrupted"]
    return 3 if interrupted else 0

"""Plan an ablation table: every row's full override list and one epoch count for all rows.

Rows of a table are compared at the same number of epochs (as in the paper). With ``epochs=N``
that is N; otherwise the plan measures each selected row's seconds per epoch (a few real
training steps, plus the NN monitor that follows every epoch) and picks the largest epoch count
with which every row fits its share of ``budget_min``. The plan is saved as ``plan.json`` in the table folder, so a resumed table uses
the same epochs even if the machine got faster or slower.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from latentmim.ablate.scales import get_geometry, get_scale, resolve
from latentmim.ablate.tables import TABLES, Row, Table, rows_of
from latentmim.config.errors import ConfigError
from latentmim.config.load import compose_config
from latentmim.config.schema import PretrainConfig
from latentmim.runtime.progress import live_bars

# Settings of every ablation run (before the table's and the user's): evaluate each epoch for
# the NN-vs-time curve, keep only checkpoint_latest, no TensorBoard, and a collapse guard that
# reacts within the few hundred steps of a CPU row.
RUN_DEFAULTS = (
    "eval_freq=1", "save_freq=100000", "nn_train_images=5000", "nn_val_images=5000", "baselines=false",
    "log.tensorboard=false", "log.print_freq=20", "collapse.patience=50",
)
# Overrides that may change when a table is continued: they do not change a row's numbers (data
# and augmentation are seeded per sample, whatever the number of loader processes).
RUNTIME_KEYS = ("env.workers=", "env.threads=", "log.")
# Share of a row's budget spent in its epochs (the rest: final evaluation, start-up).
TRAIN_SHARE = 0.9


@dataclass
class AblateOptions:
    """Options of ``latentmim ablate TABLE``; every other ``key=value`` is a config override of every row.

    Attributes:
        dataset: fashion_mnist (default; real data), synthetic, cifar10, ..., imagenet100.
        model: size preset (:data:`~latentmim.ablate.scales.SCALES`): tiny | small | demo | vit_small | vit_base.
        budget_min: minutes for the whole table (rows share it equally); ignored with ``epochs``.
        epochs: fixed epochs of every row (0 = derive from ``budget_min``).
        output_dir: the table goes to ``output_dir/TABLE`` (one folder per row).
        rows: comma-separated row keys to run (empty = all rows).
        calibrate_steps: timed training steps per row when deriving epochs.
        seeds: training runs per row (``env.seed`` 0..N-1, the data's content fixed); tables show
            mean +- std and whether each of the paper's orderings holds or is within noise.
        supervised: add the supervised ceiling row (the same ViT trained with labels, same epochs).
        segment_images: score unsupervised segmentation mIoU on this many val images per run
            (datasets with masks: synthetic); 0 = off.
        segment_probe_images: with ``segment_images``, also the linear segmentation probe fitted on
            this many train images (semantic and foreground mIoU on the same val images); 0 = off.
            Finished rows are re-evaluated, not re-trained, when these two options change.
    """

    dataset: str = "fashion_mnist"
    model: str = "small"
    budget_min: float = 60.0
    epochs: int = 0
    output_dir: str = "./outputs/ablate"
    rows: str = ""
    calibrate_steps: int = 5
    seeds: int = 1
    supervised: bool = True
    segment_images: int = 0
    segment_probe_images: int = 0

    @property
    def row_keys(self) -> tuple[str, ...]:
        """``rows`` as a tuple of keys."""
        return tuple(k.strip() for k in self.rows.split(",") if k.strip())


@dataclass
class Plan:
    """What a table run will do; saved as ``plan.json``."""

    table: str
    dataset: str
    model: str
    epochs: int
    budget_min: float | None
    overrides: list[str]  # the user's extra overrides
    rows: dict[str, list[str]] = field(default_factory=dict)  # row key -> its full override list
    seconds_per_epoch: dict[str, float] = field(default_factory=dict)

    def row_config(self, key: str, table_dir: Path, seed: int = 0) -> PretrainConfig:
        """The validated configuration of one run of a row (resumable: ``resume=True``).

        Seed ``s`` trains with ``env.seed=s`` on the same images (``synthetic.seed`` fixed to
        the table's data seed) in its own folder (:func:`run_name`).
        """
        words = [*self.rows[key], f"epochs={self.epochs}", f"warmup_epochs={warmup_epochs(self.epochs)}",
                 f"output_dir={table_dir}", f"job_name={run_name(key, seed)}", "resume=True", *self.overrides]
        cfg = compose_config(words, config_name="lmim")
        if seed:
            cfg = compose_config([*words, f"synthetic.seed={cfg.data_seed}", f"env.seed={cfg.env.seed + seed}"],
                                 config_name="lmim")
        return cfg


def run_name(key: str, seed: int) -> str:
    """Run folder of a row's seed: ``key`` for seed 0 (tables of one seed keep their layout), ``key_s1`` ..."""
    return key if seed == 0 else f"{key}_s{seed}"


def warmup_epochs(epochs: int) -> int:
    """5% of the epochs as in the paper (40 of 800), but at least 1 when there are 2 or more."""
    return 0 if epochs < 2 else max(1, round(0.05 * epochs))


def select_rows(table: Table, keys: tuple[str, ...], supervised: bool = True) -> list[Row]:
    """The rows named by ``rows=`` (all when empty), in the table's order."""
    rows = rows_of(table, supervised)
    known = [r.key for r in rows]
    bad = [k for k in keys if k not in known]
    if bad:
        raise ConfigError(f"ablate {table.name}: option 'rows': unknown row '{bad[0]}'; rows are {', '.join(known)}")
    return [r for r in rows if not keys or r.key in keys]


def row_words(table: Table, row: Row, opts: AblateOptions) -> list[str]:
    """All ``key=value`` settings of a row, placeholders filled, before epochs and the user's."""
    scale, geometry = get_scale(opts.model), get_geometry(opts.dataset)
    words = [f"dataset={opts.dataset}", *geometry.overrides, *scale.overrides, *RUN_DEFAULTS,
             *table.base, *row.overrides]
    return resolve(words, scale, geometry)


def measure_seconds_per_epoch(cfg: PretrainConfig, steps: int) -> float:
    """Seconds of one epoch of ``cfg``: training plus the NN monitor that follows every epoch.

    Training is timed on ``steps`` real steps (data loading included) after one warm-up step; the
    monitor from the encoder's speed on two validation batches, scaled to its image count.
    """
    from latentmim.engine.pretrain import Pretrainer  # the engine imports the whole stack
    from latentmim.probing.features import encode_images

    trainer = Pretrainer(cfg)
    batches = iter(trainer.data.loader)
    device = trainer.device
    trainer.model.train()
    t0 = 0.0
    for i in range(steps + 1):
        if i == 1:  # the first step pays for worker start-up and lazy initialisation
            t0 = time.perf_counter()
        imgs, labels = next(batches)[:2]
        trainer.train_step(imgs.to(device), i, 0.5, labels=labels.to(device))
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = (time.perf_counter() - t0) / max(steps, 1) * trainer.batches_per_epoch
    encoder, data = trainer.model.encoder.eval(), trainer.data
    seen, t0 = 0, time.perf_counter()
    with torch.no_grad():
        for i, batch in enumerate(data.nn_val):
            encode_images(encoder, batch[0].to(device))
            seen += batch[0].shape[0]
            if i == 1:
                break
    monitor_images = len(data.nn_train.dataset) + len(data.nn_val.dataset)
    return train_s + (time.perf_counter() - t0) / max(seen, 1) * monitor_images


def make_plan(table: Table, opts: AblateOptions, overrides: list[str], table_dir: Path) -> Plan:
    """Load the table's saved plan, or make (and save) a new one.

    Raises:
        ConfigError: the folder holds a plan made with other settings, or a row's config is invalid.
    """
    rows = select_rows(table, opts.row_keys, opts.supervised)
    path = table_dir / "plan.json"
    if path.exists():
        plan = Plan(**load_json(path))
        _check_same(plan, opts, overrides, table_dir)
        plan.overrides = list(overrides)  # runtime keys (workers, threads, logging) may change
        if not opts.epochs and plan.budget_min not in (None, opts.budget_min):
            print(f"ablate {table.name}: continuing the table planned in {table_dir} with {plan.epochs} epochs "
                  f"per row (budget_min={plan.budget_min}); budget_min={opts.budget_min} is not used")
        for row in rows:  # rows not run before join the saved plan with its epochs
            plan.rows.setdefault(row.key, row_words(table, row, opts))
            plan.row_config(row.key, table_dir)
        path.write_text(json.dumps(asdict(plan), indent=2))
        return plan
    plan = Plan(table.name, opts.dataset, opts.model, max(opts.epochs, 1), None if opts.epochs else opts.budget_min,
                list(overrides), {r.key: row_words(table, r, opts) for r in rows})
    for row in rows:  # validate every row before spending any time
        plan.row_config(row.key, table_dir)
    if not opts.epochs:
        share = opts.budget_min * 60.0 * TRAIN_SHARE / len(rows)
        bar = tqdm(rows, desc=f"ablate {table.name}: timing rows", unit="row", disable=not live_bars())
        for row in bar:
            cfg = plan.row_config(row.key, table_dir)
            cfg.log.progress = False
            plan.seconds_per_epoch[row.key] = round(measure_seconds_per_epoch(cfg, opts.calibrate_steps), 2)
        slowest = max(plan.seconds_per_epoch.values())
        plan.epochs = max(1, int(share // slowest))
        if share < slowest:
            print(f"ablate {table.name}: budget_min={opts.budget_min} gives each row {share:.0f} s of training, "
                  f"less than one epoch of the slowest row ({slowest:.0f} s); running 1 epoch")
    table_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(plan), indent=2))
    return plan


def _results_affecting(overrides: list[str]) -> list[str]:
    """The overrides that change what a row computes (not how fast or how verbosely)."""
    return [w for w in overrides if not w.startswith(RUNTIME_KEYS)]


def _check_same(plan: Plan, opts: AblateOptions, overrides: list[str], table_dir: Path) -> None:
    """A saved plan is only continued with the settings it was made with (runtime keys aside)."""
    asked = {"dataset": opts.dataset, "model": opts.model, "overrides": _results_affecting(overrides)}
    if opts.epochs:
        asked["epochs"] = opts.epochs
    for key, value in asked.items():
        saved = _results_affecting(plan.overrides) if key == "overrides" else getattr(plan, key)
        if saved != value:
            raise ConfigError(
                f"ablate: output_dir '{table_dir}' holds a table planned with {key}={saved}, "
                f"not {value}; continue it with the same settings or choose another output_dir"
            )


def load_json(path: Path) -> dict:
    """A JSON file the table wrote (plan, row results); a corrupt one is one :class:`ConfigError` line."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"ablate: '{path}' cannot be read ({str(err).splitlines()[0]}); "
                          "delete it to redo that part of the table") from None
    if not isinstance(data, dict):
        raise ConfigError(f"ablate: '{path}' is not a JSON object; delete it to redo that part of the table")
    return data


def get_table(name: str) -> Table:
    if name not in TABLES:
        raise ConfigError(f"ablate: unknown table '{name}'; choose one of {', '.join(TABLES)} (or 'list')")
    return TABLES[name]

"""The paper's ablation tables as data: every row's config diff and the paper's numbers.

Rows are ``key=value`` overrides on top of the table's base settings; ``{placeholders}`` are
sizes that depend on the model scale (:mod:`latentmim.ablate.scales`): ``{gap}`` is the "gap 4"
of ViT-B/16 scaled to the patch size, ``{dec}`` / ``{dec_deep}`` the decoder depths 3 / 8,
``{proj}`` the projector depth, ``{pcae_depth}`` the encoder depth of the PCAE table. Paper
numbers are the Latent MIM paper's tables (ViT-B/16 on ImageNet-1K; the headline's SimMIM and
ConMIM rows quote its table too) and, for the PCAE table, the PCAE paper's.

How the tables chain (read from the paper's numbers, which repeat across tables): the collapse
table uses the MSE loss, mask ratio 0.75, gap 0, a self-attention decoder of depth 3 and no
projector; the loss table varies the loss of that setting ("MSE" = "Momentum targets"); the
masking table starts from its PatchDisc row; the decoder table from the masking table's best row
(the scale's ``{mask}``: 0.9 at the paper's scales).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Base of the collapse and loss tables: Latent MIM with a momentum target, MSE, MAE-like masking.
_LMIM_BASE = [
    "method=lmim", "target_mode=ema", "loss=mse", "mask_ratio=0.75", "patch_gap=0", "avg_sim_coeff=0",
    "decoder_type=self", "avg_vis_mask_token=false", "proj.mlp_depth=0", "decoder_depth={dec}",
]
# MAE as in the paper's reference rows: 75% masked, gap 0, 8-block decoder, normalised pixels.
_MAE = ["method=mae", "mask_ratio=0.75", "patch_gap=0", "pos_spacing=integer", "decoder_depth={dec_deep}", "mae.norm_pix_loss=true"]
# SimMIM, ConMIM and I-JEPA with their papers' settings (contiguous patches, as in their papers);
# the sizes a small grid needs (mask cell, projector and predictor widths) come from the scale.
_SIMMIM = ["method=simmim", "patch_gap=0", "simmim.mask_ratio=0.6"]
_CONMIM = ["method=conmim", "patch_gap=0", "target_mode=ema", "conmim.perturb=target"]
_IJEPA = ["method=ijepa", "patch_gap=0", "pos_spacing=integer"]
# The paper's best Latent MIM (the headline row).
_LMIM_BEST = [
    "method=lmim", "target_mode=ema", "loss=infonce_patches", "mask_ratio={mask}", "patch_gap={gap}",
    "avg_sim_coeff=0.1", "decoder_type=cross", "avg_vis_mask_token=true", "proj.mlp_depth={proj}",
    "decoder_depth={dec}",
]


@dataclass(frozen=True)
class Row:
    """One row of an ablation table.

    Attributes:
        key: short name, also the row's run folder and what ``rows=`` selects.
        label: the row's name in the paper's table.
        overrides: ``key=value`` diffs on the table's base (placeholders allowed).
        paper: the paper's numbers for this row, by column name (None = not reported).
    """

    key: str
    label: str
    overrides: tuple[str, ...]
    paper: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Ordering:
    """One of the paper's claims about a table: row ``better`` beats row ``worse`` on ``metric``.

    With ``collapse=True`` the claim is instead that ``better`` collapses (its S(targets) ends
    at or above the collapse guard's 0.95); ``worse`` is then the row it is contrasted with.
    ``at_least`` claims ``>=`` (e.g. "gap and regulariser >= none"): a gap within noise holds.
    """

    better: str
    worse: str
    label: str
    metric: str = "nn"
    at_least: bool = False
    collapse: bool = False


@dataclass(frozen=True)
class Table:
    """An ablation table: a base setting, its rows, the paper's columns and its orderings."""

    name: str
    title: str
    base: tuple[str, ...]
    rows: tuple[Row, ...]
    paper_columns: tuple[str, ...]
    note: str = ""
    orderings: tuple[Ordering, ...] = ()

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)


def _row(key: str, label: str, overrides: list[str], **paper: float | None) -> Row:
    return Row(key, label, tuple(overrides), dict(paper))


def _mae_row(**paper: float | None) -> Row:
    return _row("mae", "MAE [13]", _MAE, **paper)


# The ceiling of every table: the same ViT trained with labels for the same epochs, on contiguous
# patches (gap 0: the evaluation geometry; without it the lmim config's gap 4 would apply).
# (mask_ratio only keeps the view sampler valid on any grid: the supervised model sees every patch.)
SUPERVISED = _row("supervised", "Supervised ceiling (same ViT, labels)",
                  ["method=supervised", "patch_gap=0", "mask_ratio=0.5"])


TABLES: dict[str, Table] = {
    "collapse": Table(
        "collapse", "Representation collapse: how targets are produced",
        tuple(_LMIM_BASE),
        (
            _row("naive", "Naive Latent-MIM", ["target_mode=naive"], Sim=1.00, NN=0.9, LP=7.9, Ft=None),
            _row("independent", "No weight sharing", ["target_mode=independent"], Sim=0.96, NN=3.4, LP=7.6, Ft=44.4),
            _row("stopgrad", "Weight sharing & stop-grad", ["target_mode=stopgrad"], Sim=0.99, NN=11.3, LP=26.6, Ft=56.9),
            _row("momentum", "Momentum targets", ["target_mode=ema"], Sim=0.50, NN=18.8, LP=39.3, Ft=79.7),
            _mae_row(Sim=0.67, NN=30.0, LP=70.4, Ft=88.3),
        ),
        ("Sim", "NN", "LP", "Ft"),
        "Sim: S(targets) for the latent rows; for MAE the paper's 0.67 has no latent target, we show S(enc).",
        (Ordering("naive", "momentum", "naive targets collapse", collapse=True),
         Ordering("independent", "momentum", "independent targets collapse", collapse=True),
         Ordering("momentum", "stopgrad", "momentum > stop-grad (NN)")),
    ),
    "loss": Table(
        "loss", "Reconstruction loss",
        tuple(_LMIM_BASE),
        (
            _row("mse", "MSE", ["loss=mse"], NN=18.8, LP=39.3, Ft=79.7),
            _row("l1", "L1", ["loss=l1"], NN=15.2, LP=36.7, Ft=81.7),
            _row("huber", "Huber", ["loss=huber"], NN=24.3, LP=46.4, Ft=82.1),
            _row("patchdisc", "PatchDisc", ["loss=infonce_patches"], NN=30.0, LP=53.4, Ft=86.0),
            _mae_row(NN=30.0, LP=59.9, Ft=88.3),
        ),
        ("NN", "LP", "Ft"),
        "",
        (Ordering("patchdisc", "mse", "PatchDisc > MSE (NN)"), Ordering("patchdisc", "l1", "PatchDisc > L1 (NN)"),
         Ordering("patchdisc", "huber", "PatchDisc > Huber (NN)")),
    ),
    "masking": Table(
        "masking", "Masking: mask ratio, patch gap, similarity regulariser",
        tuple([*_LMIM_BASE, "loss=infonce_patches"]),
        (
            _row("m75_gap0", "0.75 / gap 0 / no sim", ["mask_ratio=0.75", "patch_gap=0"], NN=30.0, LP=53.4, Ft=86.0),
            _row("m90_gap0", "0.9 / gap 0 / no sim", ["mask_ratio=0.9", "patch_gap=0"], NN=53.3, LP=70.4, Ft=87.6),
            _row("m90_gap", "0.9 / gap 4 / no sim", ["mask_ratio=0.9", "patch_gap={gap}"], NN=54.6, LP=71.2, Ft=88.0),
            _row("m90_gap_sim", "0.9 / gap 4 / sim", ["mask_ratio=0.9", "patch_gap={gap}", "avg_sim_coeff=0.1"],
                 NN=56.8, LP=72.9, Ft=88.5),
            _mae_row(NN=30.0, LP=59.9, Ft=88.3),
        ),
        ("NN", "LP", "Ft"),
        "",
        (Ordering("m90_gap0", "m75_gap0", "mask 0.9 > 0.75 (NN)"),
         Ordering("m90_gap", "m90_gap0", "patch gap >= none (NN)", at_least=True),
         Ordering("m90_gap_sim", "m90_gap", "similarity regulariser >= none (NN)", at_least=True)),
    ),
    "decoder": Table(
        "decoder", "Decoder design",
        # the masking table's best row: 0.9 of 196 patches in the paper, the scale's {mask} (0.75 on
        # the demo scale's 16 patches, where 0.9 leaves 2 visible: docs/recipes.md#why-4-of-16-patches-visible)
        tuple([*_LMIM_BASE, "loss=infonce_patches", "mask_ratio={mask}", "patch_gap={gap}", "avg_sim_coeff=0.1"]),
        (
            _row("self_none", "Self-attn / none / 3", ["decoder_type=self", "proj.mlp_depth=0"], NN=56.8, LP=72.9, Ft=88.5),
            _row("self_mlp", "Self-attn / mlp / 3", ["decoder_type=self", "proj.mlp_depth={proj}"], NN=59.7, LP=76.8, Ft=89.4),
            _row("cross_mlp", "Cross-attn / mlp / 3", ["decoder_type=cross", "proj.mlp_depth={proj}"],
                 NN=61.1, LP=77.0, Ft=89.4),
            _row("cross_cues", "Cross-attn w/ vis cues / mlp / 3",
                 ["decoder_type=cross", "avg_vis_mask_token=true", "proj.mlp_depth={proj}"], NN=63.3, LP=77.3, Ft=89.9),
            _row("cross_cues_deep", "Cross-attn w/ vis cues / mlp / 8",
                 ["decoder_type=cross", "avg_vis_mask_token=true", "proj.mlp_depth={proj}", "decoder_depth={dec_deep}"],
                 NN=35.9, LP=65.8, Ft=86.2),
            _mae_row(NN=30.0, LP=59.9, Ft=88.3),
        ),
        ("NN", "LP", "Ft"),
        "",
        (Ordering("cross_cues", "self_mlp", "cross-attention + cues >= self-attention (NN)", at_least=True),
         Ordering("cross_cues", "cross_cues_deep", "decoder depth 3 >= depth 8 (NN)", at_least=True)),
    ),
    "headline": Table(
        "headline", "Headline: MAE, SimMIM, ConMIM, data2vec, Latent MIM, and I-JEPA (paper: ViT-B, 800-1600 epochs)",
        (),
        (
            _row("mae", "MAE [13] (1600 ep)", _MAE, NN=12.2, LP=67.8),
            _row("simmim", "SimMIM [28] (800 ep)", _SIMMIM, NN=None, LP=56.7),
            _row("conmim", "ConMIM [29] (800 ep)", _CONMIM, NN=None, LP=39.3),
            _row("data2vec", "data2vec [2] (800 ep)",
                 ["method=data2vec", "mask_ratio=0.8", "patch_gap=0"], NN=25.7, LP=60.3),
            _row("lmim", "Latent MIM (800 ep)", _LMIM_BEST, NN=50.1, LP=72.0),
            _row("ijepa", "I-JEPA (not in the paper)", _IJEPA, NN=None, LP=None),
        ),
        ("NN", "LP"),
        "",
        (*(Ordering("lmim", other, f"Latent MIM > {name} ({col})", metric=metric)
           for metric, col in (("nn", "NN"), ("lp", "LP"))
           for other, name in (("data2vec", "data2vec"), ("conmim", "ConMIM"), ("simmim", "SimMIM"), ("mae", "MAE"))),
         Ordering("lmim", "mae", "Latent MIM > MAE (segmentation mIoU)", metric="miou"),
         Ordering("lmim", "mae", "Latent MIM > MAE (linear probe, semantic mIoU)", metric="probe_semantic")),
    ),
    "pcae": Table(
        "pcae", "PCAE: ranking vs random drop, drop cases, training throughput vs MAE",
        ("method=pcae", "mask_ratio=0.75", "patch_gap=0", "decoder_depth={dec_deep}", "pcae.keep=0.5",
         "depth={pcae_depth}"),
        (
            _row("exp1_rd", "Exp 1: RD, drop case 1", ["pcae.random_drop=true", "pcae.drop_case=1"], GPUd=3.3, Acc=81.0),
            _row("exp2_case1", "Exp 2: rank, drop case 1", ["pcae.drop_case=1"], GPUd=3.3, Acc=82.3),
            _row("exp3_case2", "Exp 3: rank, drop case 2", ["pcae.drop_case=2"], GPUd=3.7, Acc=82.0),
            _row("exp4_case3", "Exp 4: rank, drop case 3", ["pcae.drop_case=3"], GPUd=3.4, Acc=82.0),
            _row("exp5_case4", "Exp 5: rank, drop case 4", ["pcae.drop_case=4"], GPUd=3.1, Acc=81.5),
            _row("exp6_case5", "Exp 6: rank, drop case 5", ["pcae.drop_case=5"], GPUd=4.8, Acc=80.7),
            _row("mae", "MAE [13] (speed reference)", _MAE, GPUd=None, Acc=None),
        ),
        ("GPUd", "Acc"),
        "Paper: GPU days and fine-tuning top-1 of ViT-B; PCAE 300 ep = 10.1 GPUd vs MAE 300 ep = 15.4 GPUd.",
    ),
}


def rows_of(table: Table, supervised: bool = True) -> tuple[Row, ...]:
    """A table's rows, plus the supervised ceiling (not in the throughput-only PCAE table)."""
    extra = (SUPERVISED,) if supervised and table.name != "pcae" else ()
    return (*table.rows, *extra)

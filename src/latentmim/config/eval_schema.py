"""The evaluation configurations, declared once: one dataclass per suite.

Every suite shares :class:`EvalCommon` (what to evaluate, on which data, where to write, on which
device) and adds its own options. ``latentmim eval all`` nests the option classes under the suite
name (``knn.k=10``, ``linear.epochs=20``), so a key means the same thing in both places.
``None`` means "inherit": the dataset and its settings default to the checkpoint's pre-training
data. Protocol defaults are the ones of METHOD.md section 4 (MAE's recipes for LP and Ft).
:mod:`latentmim.config.eval_load` parses ``key=value`` lists into these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

# Names of the CoOp transfer datasets that ``eval fewshot`` reads (latentmim.eval.fewshot.data
# holds their layouts); beside the package's own datasets, the valid ``datasets`` entries.
TRANSFER_DATASETS: tuple[str, ...] = (
    "caltech101", "dtd", "flowers102", "oxford_pets", "stanford_cars", "sun397", "ucf101",
)
DENSE_FEATURES: tuple[str, ...] = ("prenorm", "normed")  # patch tokens before / after the final norm
PE_MODES: tuple[str, ...] = ("interpolate", "extend")  # position tables for grids other than the trained one
VIDEO_DATASETS: tuple[str, ...] = ("synthetic_video", "synthetic")  # procedural videos (no davis_root)
BOUND_TH = 0.008  # DAVIS's boundary tolerance of F, as a fraction of the image diagonal


@dataclass
class SyntheticEval:
    """Size of the procedural ``synthetic`` dataset; None = as in the checkpoint's config."""

    num_train: int | None = None
    num_val: int | None = None
    image_size: int | None = None


@dataclass
class EvalCommon:
    checkpoint: str = MISSING  # a checkpoint path, or init:PATH (its architecture at random init)
    dataset: str | None = None  # None = the checkpoint's pre-training dataset
    data_path: str | None = None  # None = the checkpoint's, to read only; with download=true the dataset's default
    download: bool = False  # torchvision datasets only, only when asked here (never from the checkpoint)
    synthetic: SyntheticEval = field(default_factory=SyntheticEval)
    train_images: int | None = None  # seeded subset of the train split (None = all)
    val_images: int | None = None  # seeded subset of the val split (None = all)
    output_dir: str | None = None  # None = <checkpoint folder>/eval_<suite>
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str | None = None  # fp32 | bf16 | fp16 autocast for encoder forwards; None = the checkpoint's env.precision
    workers: int = 2  # data-loader processes
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    seed: int = 0  # subsets, shuffling, augmentation and head initialisation derive from it
    progress: bool = True  # tqdm bars with rate and ETA


@dataclass
class KnnOptions:
    k: int = 20  # neighbours of the weighted k-NN (DINO's protocol)
    temperature: float = 0.07
    feature: str = "avgpool_prenorm"  # the official NN feature; avgpool | cls also work
    protocol: str = "both"  # loo (official LOO 1-NN on val) | weighted (train -> val) | both
    batch_size: int = 256  # images per feature-extraction batch
    baselines: bool = False  # also score raw pixels, the floor a learned feature must beat
    save_features: bool = False  # also write the features and labels to features.pt (torch.save)
    search: str = "auto"  # neighbour search: auto (bf16 + exact re-rank where bf16 is faster) | exact | bf16


@dataclass
class LinearOptions:
    mode: str = "augment"  # augment (MAE: crops + flips through the frozen encoder) | cached
    feature: str = "cls"  # MAE's linear probe uses the cls token; avgpool | avgpool_prenorm too
    epochs: int = 90
    warmup_epochs: int = 10
    batch_size: int = 256  # MAE uses 16384 on 32 GPUs; lr follows blr * batch / 256
    blr: float = 0.1
    lr: float | None = None  # absolute lr; wins over blr when set
    min_lr: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.9  # LARS momentum
    trust_coefficient: float = 0.001  # LARS eta
    min_crop: float = 0.08  # RandomResizedCrop scale lower bound (torchvision's default)
    eval_freq: int = 10  # epochs between val evaluations (and always at the end)
    ckpt_steps: int = 0  # also checkpoint every N steps inside an epoch (0 = epoch ends only)
    resume: bool = False


@dataclass
class FinetuneOptions:
    epochs: int = 100
    warmup_epochs: int = 5
    batch_size: int = 128  # per step; MAE uses 32 x 32 GPUs = 1024 (lr scales with it)
    accum_iter: int = 1
    blr: float = 5e-4
    lr: float | None = None
    min_lr: float = 1e-6
    layer_decay: float = 0.65
    weight_decay: float = 0.05
    drop_path: float = 0.1
    mixup: float = 0.8  # Mixup alpha; 0 disables
    cutmix: float = 1.0  # CutMix alpha; 0 disables
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    smoothing: float = 0.1  # label smoothing
    aa: str | None = "rand-m9-mstd0.5-inc1"  # timm RandAugment spec; None disables
    reprob: float = 0.25  # random erasing probability
    remode: str = "pixel"
    recount: int = 1
    min_crop: float = 0.08
    clip_grad: float | None = None
    token_drop: float = 0.0  # PCAE: fraction of patch tokens dropped during fine-tuning (0-0.4)
    token_drop_blocks: list[int] | None = None  # drop after these blocks (0-based); None = PCAE's 3 stages (ViT-B: 2, 5, 8)
    token_drop_eval: bool = False  # also drop at evaluation (throughput at inference)
    throughput_batches: int = 3  # timed train steps for the img/s report (0 = skip)
    eval_freq: int = 10
    ckpt_steps: int = 0  # also checkpoint every N steps inside an epoch (0 = epoch ends only)
    resume: bool = False


@dataclass
class FewshotOptions:
    datasets: list[str] = field(default_factory=list)  # empty = the checkpoint's dataset
    transfer_root: str | None = None  # CoOp data folder (caltech-101/, dtd/, oxford_pets/, ...)
    shots: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])  # CoOp reports 3 seeds
    feature: str = "avgpool"
    C: float = 1.0  # inverse L2 strength of the logistic regression (scikit-learn)
    max_iter: int = 1000
    batch_size: int = 256


@dataclass
class SegmentOptions:
    """Options of the segmentation suite (``segment.*`` under ``latentmim eval all``)."""

    images: list[str] = field(default_factory=list)  # image files; empty = the dataset's val split
    num_images: int = 8  # images taken from the dataset (the first ones of its val split)
    clusters: list[int] = field(default_factory=lambda: [3, 4, 5])
    input_size: int | None = None  # short side in px (multiple of the patch); None: trained size
    feature: str = "prenorm"  # prenorm | normed patch tokens
    pe_mode: str = "interpolate"  # position table for other grids: interpolate | extend
    tsne: bool = True
    figures: int = 16  # PNGs for the first N images; the others are scored only (0 = none)
    baselines: bool = True  # also cluster raw pixel patches and the random-init encoder
    probe_images: int = 0  # > 0: also a linear segmentation probe fitted on this many train images (synthetic)


@dataclass
class VideoOptions:
    """Options of the video suite (``video.*`` under ``latentmim eval all``)."""

    davis_root: str | None = None  # DAVIS-2017 root; when unset, procedural videos are used
    split: str = "val"  # ImageSets/2017/<split>.txt
    resolution: str = "480p"
    sequences: list[str] = field(default_factory=list)  # a subset of the split; empty = all
    num_videos: int = 4  # synthetic videos only
    num_frames: int = 12
    video_size: int = 96
    input_size: int | None = None  # encoder input short side (px); None: the frame's own
    feature: str = "prenorm"  # prenorm | normed patch tokens
    pe_mode: str = "interpolate"  # position table for other grids: interpolate | extend
    n_last_frames: int = 7
    topk: int = 5
    temperature: float = 0.1
    radius: int | None = 12  # neighbourhood in patches; None = the whole frame
    bound_th: float = BOUND_TH  # F's boundary tolerance, fraction of the diagonal
    baselines: bool = True  # also raw pixel patches and the static first mask
    figures: bool = True


@dataclass
class KnnEvalConfig(KnnOptions, EvalCommon):
    """``latentmim eval knn``."""


@dataclass
class LinearEvalConfig(LinearOptions, EvalCommon):
    """``latentmim eval linear``."""


@dataclass
class FinetuneEvalConfig(FinetuneOptions, EvalCommon):
    """``latentmim eval finetune``."""


@dataclass
class FewshotEvalConfig(FewshotOptions, EvalCommon):
    """``latentmim eval fewshot``."""


@dataclass
class SegmentEvalConfig(SegmentOptions, EvalCommon):
    """``latentmim eval segment``: the common evaluation keys plus :class:`SegmentOptions`.

    ``dataset`` defaults to the checkpoint's pre-training data (``synthetic`` has ground-truth
    segments, so mIoU is reported); ``train_images``, ``val_images``, ``workers`` and
    ``synthetic.*`` are not used by this suite.
    """


@dataclass
class VideoEvalConfig(VideoOptions, EvalCommon):
    """``latentmim eval video``: the common evaluation keys plus :class:`VideoOptions`.

    Data: ``davis_root=PATH`` reads DAVIS; otherwise ``dataset`` must be unset,
    ``synthetic_video`` or ``synthetic`` and procedural videos are written and read instead
    (``seed`` picks them). ``train_images``, ``val_images``, ``workers``, ``download`` and
    ``synthetic.*`` are not used by this suite.
    """


@dataclass
class AllEvalConfig(EvalCommon):
    """``latentmim eval all``: several checkpoints, several suites, one report.

    ``checkpoint`` holds a comma-separated list; ``names`` optional labels for them.
    """

    names: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=lambda: ["auto"])  # auto = every suite that fits
    knn: KnnOptions = field(default_factory=KnnOptions)
    linear: LinearOptions = field(default_factory=lambda: LinearOptions(mode="cached"))
    finetune: FinetuneOptions = field(default_factory=FinetuneOptions)
    fewshot: FewshotOptions = field(default_factory=FewshotOptions)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    video: VideoOptions = field(default_factory=VideoOptions)

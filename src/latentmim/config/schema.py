"""The pre-training configuration, declared once.

Key names and defaults follow the authors' Hydra configuration, so their launch command works
word for word. Defaults are the paper's reference run (ViT-B/16, ImageNet) except where noted;
the ``demo`` config (``configs/demo.yaml``) shrinks the model and data for a 2-core CPU.
Components never see this object: :mod:`latentmim.methods.factory` and the engine turn it into
plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProjConfig:
    mlp_dim: int = 4096  # hidden width of the projector MLP
    mlp_depth: int = 3  # Linear layers; 0 = no projector (ablation row "proj: none")


@dataclass
class MAEConfig:
    """``method=mae``: the pixel baseline (decoder size from ``decoder_*``; paper 8 x 512)."""

    norm_pix_loss: bool = True  # MSE to per-patch standardised pixels (MAE's better setting)


@dataclass
class PCAEConfig:
    """``method=pcae``: progressive token dropping inside the momentum target encoder."""

    keep: float = 0.5  # fraction of tokens each drop stage keeps (147 -> 73 -> 36 -> 18 for ViT-B)
    drop_case: int = 1  # 1: after blocks 0,4,8 of 12 (paper default); 2-5: see methods/token_drop.py
    drop_blocks: list[int] | None = None  # explicit 0-based blocks after which to drop; wins over drop_case
    drop_stages: int = 3  # number of drop stages of a drop case
    random_drop: bool = False  # the "RD" ablation: keep a seeded random subset, not the least similar
    target_mom: float = 0.9999  # PCAE's EMA momentum at step 0, cosine to 1.0 (its paper's value)


@dataclass
class Data2VecConfig:
    """``method=data2vec``: the data2vec-2.0-style latent baseline of the headline table."""

    top_k: int = 8  # teacher blocks averaged into the target (K=8 for ViT-B); clipped to depth
    decoder_layers: int = 5  # light conv decoder: residual Conv2d-LN-GELU layers, width decoder_embed_dim
    decoder_kernel: int = 3  # conv kernel size (odd)
    decoder_groups: int = 16  # grouped convs keep the decoder light; must divide decoder_embed_dim


@dataclass
class SimMIMConfig:
    """``method=simmim``: encoder on all tokens (hidden ones as a mask token), linear pixel head, L1."""

    mask_patch: int = 2  # mask cell side in tokens (paper: 32-px mask patches / 16-px tokens); must divide grid_size
    mask_ratio: float = 0.6  # fraction of mask cells hidden, rounded up (paper, ViT-B: 0.6)


@dataclass
class ConMIMConfig:
    """``method=conmim``: masked image modeling with denoising contrast (Yi et al., ICLR 2023)."""

    mask_frac: float = 0.3827  # hidden patches / N: 75 of 196 (BEiT blockwise masks, the authors' ViT-B setting)
    min_block_frac: float = 0.0816  # smallest mask block / N: 16 of 196
    min_aspect: float = 0.3  # block aspect ratios in [0.3, 1/0.3] (BEiT's generator)
    tau: float = 0.1  # InfoNCE temperature of the denoising contrast
    proj_hidden_dim: int = 4096  # projector hidden width
    proj_dim: int = 256  # projector output width: the space of the contrast
    proj_depth: int = 3  # Linear layers: BatchNorm + ReLU between, an affine-free BatchNorm last
    perturb: str = "target"  # strong colour/grey/blur/solarize augmentation of: target (the paper: the momentum branch's full image) | online | both | none
    target_mom: float = 0.996  # EMA momentum at step 0, cosine to 1.0 (the paper's slowly progressing target)


@dataclass
class IJEPAConfig:
    """``method=ijepa``: I-JEPA (Assran et al., CVPR 2023); key names follow the authors' YAML."""

    enc_mask_scale: list[float] = field(default_factory=lambda: [0.85, 1.0])  # context block area / N (paper)
    pred_mask_scale: list[float] = field(default_factory=lambda: [0.15, 0.2])  # each target block's area / N (paper)
    aspect_ratio: list[float] = field(default_factory=lambda: [0.75, 1.5])  # target blocks' h/w (paper); the context is square
    num_pred_masks: int = 4  # target blocks per image (paper: 4)
    min_keep: int = 10  # a context keeps more than min_keep patches (authors, 14x14 grids); small grids need less
    allow_overlap: bool = False  # targets are cut out of the context (paper: no overlap)
    reach_edges: bool = False  # False = the authors' sampler (the last patch row and column are never in a block)
    pred_depth: int = 12  # predictor blocks (released ViT-H/14 configs: 12)
    pred_emb_dim: int = 384  # predictor width (every released config: 384): a narrow predictor
    pred_num_heads: int | None = None  # None = the encoder's head count, as the authors
    target_mom: float = 0.996  # EMA momentum at step 0; target_tau_frac wins when set
    target_mom_end: float = 1.0  # EMA momentum at the end, reached linearly (the paper's ramp)
    # The paper's ViT has no cls token. Here every method shares one encoder, whose cls token the
    # evaluations and the export read too: True lets it attend during training as at evaluation.
    use_cls: bool = True


@dataclass
class CollapseConfig:
    """The collapse guard: S(targets) or S(pred) staying near 1 means every token looks alike."""

    threshold: float = 0.95  # S above this counts as collapsed (the paper's naive row: 1.00)
    patience: int = 100  # consecutive optimizer steps above the threshold before it fires
    stop: bool = False  # also stop the run (checkpoint kept); False only warns
    enabled: bool = True  # False switches the guard off


@dataclass
class SyntheticConfig:
    num_train: int = 10000  # images are generated on the fly from (seed, index): any size is free
    num_val: int = 2000  # validation images (also generated)
    image_size: int = 64  # native side before augmentation
    seed: int | None = None  # seed of the images' content; None = env.seed (ablate fixes it across seeds)


@dataclass
class EnvConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on GPUs that support it, fp32 on CPU) | fp32 | bf16 | fp16 (autocast; losses, softmax and EMA stay fp32)
    tf32: bool = True  # TF32 tensor cores for fp32 matmuls on GPUs (no effect on CPU)
    workers: int = 2  # data-loader processes
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    seed: int = 0  # every random draw (views, augmentation, init) derives from it
    slurm: bool = False  # submit through submitit; False runs here
    distributed: bool = False  # with ngpu > 1 and no torchrun around: start ngpu local processes
    ngpu: int = 1  # processes (GPUs) per node; on CPU, gloo processes
    world_size: int = 1  # nodes
    slurm_partition: str = ""  # Slurm partition ("" = the cluster's default)
    slurm_timeout: int = 4320  # minutes; the job checkpoints and requeues itself near the limit
    mem_gb: int = 0  # per node; 0 = the cluster's default
    nodelist: str = ""  # Slurm --nodelist
    exclude: str = ""  # Slurm --exclude
    cluster: str = "slurm"  # submitit executor for env.slurm=True: slurm | local (this machine, tests)
    backend: str = "auto"  # process-group backend: auto (nccl on GPU, gloo on CPU) | nccl | gloo
    fsdp: bool = False  # shard parameters/optimizer (FSDP2) instead of DDP, for the largest ViTs
    compile: bool = False  # torch.compile the training step and the NN monitor's encoder (off: not measured faster yet)


@dataclass
class LogConfig:
    print_freq: int = 20  # optimizer steps between JSONL / TensorBoard records
    progress: bool = True  # progress bar with img/s, loss, lr, similarities, ETA
    tensorboard: bool = True  # TensorBoard events in <run_dir>/tb
    curves: bool = True  # PNG curves of loss, lr and similarities after each epoch
    wandb: bool = False  # also log to Weights & Biases (run id kept in <run_dir>/wandb/runid.txt)
    wandb_project: str = "lmim"  # W&B project
    wandb_entity: str = ""  # "" = the logged-in user's default entity


@dataclass
class PretrainConfig:
    worker: str = "main_lmim"  # the authors' launcher key; only main_lmim exists
    method: str = "lmim"  # lmim | mae | pcae | data2vec | simmim | conmim | ijepa | supervised (the same ViT with labels: the ceiling)

    # --- encoder -----------------------------------------------------------------------
    encoder: str = "vit_base"  # vit_tiny | vit_small | vit_base | vit_large | vit_huge
    embed_dim: int | None = None  # override the preset's width (small images / quick tries)
    depth: int | None = None  # override the preset's depth
    num_heads: int | None = None  # override the preset's heads
    patch_size: int = 16  # pixels per patch side
    grid_size: int = 14  # patches per side; eval side = grid_size * patch_size (224)
    patch_gap: int = 4  # train crop side = grid_size * (patch_size + patch_gap) (280)
    input_size: int | None = None  # train crop side; None derives it, a mismatch is an error
    drop_path: float = 0.0  # stochastic depth rate of the online encoder
    freeze_pe: bool = True  # fixed 2-D sin-cos position embeddings
    pos_spacing: str = "authors"  # sin-cos cell coordinates: authors (i * G/(G-1), Latent MIM) | integer (i, MAE)

    # --- views -------------------------------------------------------------------------
    num_vis: int = 20  # visible patches of 196 (~90% masked: the paper's best)
    mask_ratio: float | None = None  # alternative to num_vis (e.g. 0.75); wins when set
    mask_target: bool = True  # target encoder sees only the hidden patches

    # --- target encoder ----------------------------------------------------------------
    target_mode: str = "ema"  # naive | independent | stopgrad | ema (collapse ablation)
    target_depth: int | None = None  # None = encoder depth
    target_mom: float = 0.99  # EMA momentum at step 0, cosine to 1.0
    # EMA time constant 1/(1-m) at step 0 as a fraction of the run's optimizer steps; wins over
    # target_mom when set. The paper's 0.99 over ~250k steps is 100 steps = 4e-4 of its run.
    target_tau_frac: float | None = None

    # --- projector and decoder ---------------------------------------------------------
    proj: ProjConfig = field(default_factory=ProjConfig)
    decoder_type: str = "cross"  # cross | self (decoder ablation)
    decoder_depth: int = 3  # decoder blocks (paper: 3 for cross-attention, 8 for MAE)
    decoder_embed_dim: int = 512  # decoder width
    decoder_num_heads: int = 16  # decoder attention heads
    avg_vis_mask_token: bool = True  # visual cues for the decoder queries

    # --- loss --------------------------------------------------------------------------
    loss: str = "infonce_patches"  # infonce_patches | patch_disc | mse | l1 | huber | norm_l2
    tau: float = 0.2  # PatchDisc (InfoNCE) temperature
    huber_delta: float = 1.0  # loss=huber: quadratic below, linear above this
    avg_sim_coeff: float = 0.0  # similarity regulariser weight (0.1 in the reference run)
    sim_init: float = 0.75  # similarity goal of the regulariser at step 0
    sim_end: float = 0.25  # similarity goal at the end (cosine in between)

    # --- other methods (method=mae | pcae | data2vec | simmim | conmim | ijepa) and the collapse guard
    mae: MAEConfig = field(default_factory=MAEConfig)
    pcae: PCAEConfig = field(default_factory=PCAEConfig)
    data2vec: Data2VecConfig = field(default_factory=Data2VecConfig)
    simmim: SimMIMConfig = field(default_factory=SimMIMConfig)
    conmim: ConMIMConfig = field(default_factory=ConMIMConfig)
    ijepa: IJEPAConfig = field(default_factory=IJEPAConfig)
    collapse: CollapseConfig = field(default_factory=CollapseConfig)

    # --- data --------------------------------------------------------------------------
    dataset: str = "synthetic"  # synthetic | fashion_mnist | cifar10 | cifar100 | stl10 | imagefolder (any folder of images) | imagenet | imagenet100
    data_path: str | None = None  # None = the dataset's default location; imagefolder: the folder (its train/ when there is one)
    download: bool = False  # torchvision datasets only, and only when asked
    train_images: int | None = None  # pre-train on a fixed random subset of this many images (None = all)
    min_crop: float = 0.2  # RandomResizedCrop scale lower bound
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    # --- optimisation ------------------------------------------------------------------
    epochs: int = 800  # training epochs (schedules are functions of the fraction of the run)
    warmup_epochs: int = 40  # linear lr warm-up
    warmup_frac: float | None = None  # warm-up as a fraction of the run; wins over warmup_epochs (paper: 40/800 = 0.05)
    batch_size: int = 256  # per process
    accum_iter: int = 1  # micro-batches per optimizer step
    blr: float = 1.5e-4  # lr = blr * effective batch / 256
    lr: float | None = None  # absolute lr; wins over blr when set
    min_lr_frac: float = 0.25  # cosine schedule ends at min_lr_frac * lr
    weight_decay: float = 0.05  # AdamW decay (not on norms, biases, position/embed tables)
    clip_grad: float | None = None  # max gradient norm; None = no clipping

    # --- run ---------------------------------------------------------------------------
    output_dir: str = "./outputs"  # runs go to output_dir/job_name
    job_name: str = "lmim"  # the run folder's name under output_dir
    resume: bool = False  # continue the run in output_dir/job_name from checkpoint_latest.pth
    resume_allow: list[str] = field(default_factory=list)  # keys allowed to differ from the resumed run's config
    init_from: str | None = None  # start from these weights (latentmim, Latent MIM authors' or MAE file); resume wins
    eval_freq: int = 10  # epochs between NN monitor runs (and always at the end); 0 = no monitor
    nn_dataset: str | None = None  # labelled data of the NN monitor; None = the training data when it has labels
    nn_data_path: str | None = None  # its location (imagefolder: a folder with train/ and val/ class folders)
    save_freq: int = 50  # epochs between kept checkpoints (checkpoint_latest is always kept)
    ckpt_steps: int = 0  # also write checkpoint_latest every N optimizer steps mid-epoch
    nn_train_images: int | None = 10000  # train images in the weighted k-NN bank (None = all)
    nn_val_images: int | None = 10000  # val images for the NN monitor (None = all)
    knn_k: int = 20  # neighbours of the weighted k-NN monitor
    knn_t: float = 0.07  # temperature of the weighted k-NN vote
    baselines: bool = False  # also report NN of the random-init encoder and raw pixels

    env: EnvConfig = field(default_factory=EnvConfig)
    log: LogConfig = field(default_factory=LogConfig)

    # --- derived -----------------------------------------------------------------------
    @property
    def train_size(self) -> int:
        """Side of a training crop: G * (P + gap)."""
        return self.grid_size * (self.patch_size + self.patch_gap)

    @property
    def eval_size(self) -> int:
        """Side of an evaluation image: G * P."""
        return self.grid_size * self.patch_size

    @property
    def data_seed(self) -> int:
        """Seed of the procedural data's content: ``synthetic.seed``, else ``env.seed``."""
        return self.env.seed if self.synthetic.seed is None else self.synthetic.seed

    @property
    def run_dir(self) -> str:
        return f"{self.output_dir.rstrip('/')}/{self.job_name}"

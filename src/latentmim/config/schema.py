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
class SyntheticConfig:
    num_train: int = 10000  # images are generated on the fly from (seed, index): any size is free
    num_val: int = 2000
    image_size: int = 64  # native side before augmentation


@dataclass
class EnvConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; softmax, loss and EMA stay fp32)
    workers: int = 2  # data-loader processes
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    seed: int = 0  # every random draw (views, augmentation, init) derives from it
    slurm: bool = False  # submit through submitit (scale-out issue); False runs here
    distributed: bool = False
    ngpu: int = 1
    world_size: int = 1  # nodes
    slurm_partition: str = ""
    slurm_timeout: int = 4320  # minutes
    mem_gb: int = 0
    nodelist: str = ""
    exclude: str = ""


@dataclass
class LogConfig:
    print_freq: int = 20  # optimizer steps between JSONL / TensorBoard records
    progress: bool = True  # progress bar with img/s, loss, lr, similarities, ETA
    tensorboard: bool = True
    curves: bool = True  # PNG curves of loss, lr and similarities after each epoch
    wandb: bool = False


@dataclass
class PretrainConfig:
    worker: str = "main_lmim"
    method: str = "lmim"

    # --- encoder -----------------------------------------------------------------------
    encoder: str = "vit_base"  # vit_tiny | vit_small | vit_base | vit_large | vit_huge
    embed_dim: int | None = None  # override the preset's width (small images / quick tries)
    depth: int | None = None  # override the preset's depth
    num_heads: int | None = None  # override the preset's heads
    patch_size: int = 16
    grid_size: int = 14  # patches per side; eval side = grid_size * patch_size (224)
    patch_gap: int = 4  # train crop side = grid_size * (patch_size + patch_gap) (280)
    input_size: int | None = None  # train crop side; None derives it, a mismatch is an error
    drop_path: float = 0.0
    freeze_pe: bool = True  # fixed 2-D sin-cos position embeddings

    # --- views -------------------------------------------------------------------------
    num_vis: int = 20  # visible patches of 196 (~90% masked: the paper's best)
    mask_ratio: float | None = None  # alternative to num_vis (e.g. 0.75); wins when set
    mask_target: bool = True  # target encoder sees only the hidden patches

    # --- target encoder ----------------------------------------------------------------
    target_mode: str = "ema"  # naive | independent | stopgrad | ema (collapse ablation)
    target_depth: int | None = None  # None = encoder depth
    target_mom: float = 0.99  # EMA momentum at step 0, cosine to 1.0

    # --- projector and decoder ---------------------------------------------------------
    proj: ProjConfig = field(default_factory=ProjConfig)
    decoder_type: str = "cross"  # cross | self (decoder ablation)
    decoder_depth: int = 3
    decoder_embed_dim: int = 512
    decoder_num_heads: int = 16
    avg_vis_mask_token: bool = True  # visual cues for the decoder queries

    # --- loss --------------------------------------------------------------------------
    loss: str = "infonce_patches"  # infonce_patches | patch_disc | mse | l1 | huber | norm_l2
    tau: float = 0.2
    huber_delta: float = 1.0
    avg_sim_coeff: float = 0.0  # similarity regulariser weight (0.1 in the reference run)
    sim_init: float = 0.75
    sim_end: float = 0.25

    # --- data --------------------------------------------------------------------------
    dataset: str = "synthetic"
    data_path: str | None = None  # None = the dataset's default location
    download: bool = False  # torchvision datasets only, and only when asked
    min_crop: float = 0.2
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    # --- optimisation ------------------------------------------------------------------
    epochs: int = 800
    warmup_epochs: int = 40
    batch_size: int = 256  # per process
    accum_iter: int = 1
    blr: float = 1.5e-4  # lr = blr * effective batch / 256
    lr: float | None = None  # absolute lr; wins over blr when set
    min_lr_frac: float = 0.25
    weight_decay: float = 0.05
    clip_grad: float | None = None

    # --- run ---------------------------------------------------------------------------
    output_dir: str = "./outputs"
    job_name: str = "lmim"
    resume: bool = False
    eval_freq: int = 10  # epochs between NN monitor runs (and always at the end)
    save_freq: int = 50  # epochs between kept checkpoints (checkpoint_latest is always kept)
    ckpt_steps: int = 0  # also write checkpoint_latest every N optimizer steps mid-epoch
    nn_train_images: int | None = 10000  # train images in the weighted k-NN bank (None = all)
    nn_val_images: int | None = 10000  # val images for the NN monitor (None = all)
    knn_k: int = 20
    knn_t: float = 0.07
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
    def run_dir(self) -> str:
        return f"{self.output_dir.rstrip('/')}/{self.job_name}"

"""Pretraining loop: one run (method x settings x seed), single process or DDP.

    twbyol train --config run.json       # what a submitted job runs (see twbyol/launch.py)

The run's resolved config (a JSON object, the fields of `TrainConfig`) is written by the
workflow; the loop writes, into `out_dir`, checkpoint.pt every `checkpoint_every` steps and at
each epoch end, metrics.jsonl (one JSON line per epoch, also printed), and at the end model.pt
and efficiency.json. A run that finds checkpoint.pt resumes from it: model, target, optimiser,
scaler, step and elapsed wall time; the data of each step is a function of (seed, epoch, index),
so the resumed run sees exactly the batches the uninterrupted one would have.

Under DDP every rank takes the same collectives at the same steps (twbyol.distributed carries
them, on the training device). The host waits for the device only at a sync point: every
`sync_every` steps, at every checkpoint and at the epoch ends, where one all-reduce carries
the preemption flag and each rank's first non-finite loss; so a non-finite loss on any rank
stops every rank at the same point, with the rank and step in the error, and a checkpoint
is only written after that check has passed. Losses and statistics stay on the device
until a line is logged.

A batch the method finds nothing to learn from (BYOL: every pair of the global batch weighs 0)
is skipped — no forward, backward, optimiser, EMA or scaler step — and counted
(`skipped_steps`). It still consumes its step index: the step index is the number of batches
consumed, so the data order, the lr and EMA schedules and the resume stay functions of it, and
every weighting runs the same batches over the same schedule (the skipped step's lr is unused).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from twbyol import deps, distributed, io
from twbyol.allocator import keep_large_allocations
from twbyol.data.artifacts import load_labels, read_clips, read_index
from twbyol.data.augment import augment_batch
from twbyol.data.crops import CropConfig
from twbyol.data.sampling import AUGMENT_ON, TemporalCropDataset, select_clips
from twbyol.experiment import check_run, uses_labels
from twbyol.hardware import autocast_dtype, peak_memory_mb, pick_device
from twbyol.methods import build_method
from twbyol.methods.byol import ema_momentum
from twbyol.models.backbones import channels_last_wanted, to_channels_last
from twbyol.optim import build_optimizer, cosine_schedule
from twbyol.progress import Progress
from twbyol.settings import DEFAULT_TAU, METHODS, TIME_UNITS, check_keys
from twbyol.split import read_protocol

WARM_STEPS = 5  # efficiency.json's steady rate leaves out the first steps of a process
# Settings a checkpoint may be resumed under changed: where and how often the run writes and
# checks, never what it trains. Every other TrainConfig field must match (resume_identity).
RESUME_IGNORES = (
    "out_dir",  # the run's folder: a results folder moved as a whole resumes
    "checkpoint_every",  # when checkpoints are written
    "sync_every",  # when ranks agree on signals and non-finite losses
    "log_every",  # printing
    "resume_any_code",  # this rule itself
)


@dataclass
class TrainConfig:
    run_id: str
    seed: int
    out_dir: str
    frames_dir: str  # results/{exp}/frames/{dataset}
    index: str  # its clips.tsv (index.tsv when pretrain_splits are chosen: it has the splits)
    method: str = "byol"
    weighting: str = "uniform"  # BYOL's pair weights: w(dt) (exponential = TW-BYOL, uniform,
    # binary, linear, inverse_square), oracle (same ground-truth
    # state) or permuted (exponential, shuffled over the batch);
    # with crop policy near_pairs the density of the crop pairs
    # instead, and the loss weights are uniform
    tau: float = DEFAULT_TAU  # frames at the source rate (30 fps: 1 s), or seconds:
    time_unit: str = "frames"  # the unit of tau and window (seconds: the run gave tau_s /
    # window_s; crop centres then reach the loss in seconds)
    normalize: str = "weights"  # byol_loss: weighted mean (see its docstring); "batch": the
    # study text's (w * l).mean()
    temperature: float = 0.0  # contrastive methods; 0: the method's paper default
    window: float = 30.0  # time_contrast: positives within this many frames
    labels: str = ""  # supervised, oracle: the labels .npz of the pretraining dataset
    protocol: str = ""  # ... and its protocol .json; labels of a task are used on that
    # task's SubmissionTrain clips only (never scored), and only
    # those clips are pretrained on
    pretrain_splits: list = field(default_factory=list)  # protocol splits to pretrain on
    # (index.tsv `splits`); empty: every clip with video
    crop: dict = field(default_factory=dict)  # CropConfig fields
    backbone: dict = field(default_factory=lambda: {"name": "tiny"})  # name + builder kwargs
    proj_hidden: int = 4096  # BYOL: projector/predictor hidden width 4096, output 256
    proj_dim: int = 256
    pred_hidden: int = 4096
    data_fraction: float = 1.0  # fraction of clips used for pretraining
    data_seed: int = 0  # fixed across seeds: seeds then compare the same clips
    epochs: int = 50
    samples_per_epoch: int = 0  # 0: one sample per clip
    batch_size: int = 64  # global, split over ranks
    optimizer: str = "lars"
    lr: float = 2.4  # per 256 samples: rho-BYOL's LARS base lr
    weight_decay: float = 1.5e-6  # BYOL's (Grill et al. 2020)
    lars_momentum: float = 0.9  # of the optimiser (AdamW keeps its own betas)
    lars_nesterov: bool = False  # rho-BYOL's SlowFast recipe uses Nesterov momentum
    warmup_epochs: float = 4.0
    warmup_start_lr: float = 0.0  # per 256 samples, scaled with the batch like lr
    cosine_after_warmup: bool = True  # False: cosine from step 0, warm-up ramps onto it (SlowFast)
    loss_scale: float = 1.0  # the gradient is that of loss_scale x the loss (the logged
    # loss is not scaled): rho-BYOL's SEQUENTIAL loss sums its rho
    # clips' terms, so its gradient is rho x ours; LARS-adapted
    # weights step alike either way, BN and biases do not
    ema_base: float = 0.996  # BYOL's target momentum, cosine to 1
    precision: str = "bf16"  # autocast dtype on GPU; CPU runs in fp32 ...
    cpu_bf16: bool = False  # ... unless this is set and the CPU has native bf16
    # (AVX512-BF16/AMX): 1.7x the tiny backbone's step on
    # the 2-core CI machine; off by default, it changes numerics
    channels_last: bool | str = "auto"  # channels-last 3D convolutions: true / false / auto (on
    # where measured faster: CPU; twbyol.models.backbones)
    num_workers: int = 4
    augment_on: str = "device"  # where crops are augmented: "device" (the batch at once on the
    # training device: twbyol.data.augment; the workers only
    # slice frames) or "loader" (torchvision, per crop, in the
    # workers); the same augmentation either way. Device also
    # on a CPU: a tiny run on 2 cores trains at 60 samples/s
    # with it, 53-56 with the workers augmenting (README)
    cudnn_benchmark: bool = True  # GPU: autotuned convolutions (fixed crop shapes); 1.05x a
    # Slow-R50 step on an H200. False does not make GPU runs
    # equal run to run: cuDNN's weight gradients and
    # scatter_add_ use atomics either way
    checkpoint_every: int = 100  # steps
    sync_every: int = 10  # steps between sync points (preemption and non-finite checks):
    # 10 Slow-R50 steps are ~5 s of SLURM's 120 s signal lead
    log_every: int = 0  # a progress line every N steps too (0: at least once a minute)
    resume_any_code: bool = False  # resume a checkpoint of this config taken under other
    # training code (a fix that must not restart long runs);
    # off: such a checkpoint is set aside and the run starts
    # anew. Either way the log names both code digests

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        check_keys(cls, d, "training")
        cfg = cls(**d)
        if cfg.method not in METHODS:
            raise ValueError(f"method: unknown {cfg.method!r}; expected one of {METHODS}")
        if not cfg.run_id or "/" in cfg.run_id or cfg.run_id.startswith("."):
            raise ValueError(f"run_id: {cfg.run_id!r} is not a safe folder name")
        if cfg.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit: {cfg.time_unit!r}, expected one of {TIME_UNITS}")
        check_run(asdict(cfg))
        channels_last_wanted(cfg.channels_last, torch.device("cpu"))  # a bad value fails here
        if cfg.augment_on not in AUGMENT_ON:
            raise ValueError(
                f"training.augment_on: {cfg.augment_on!r}, expected one of {AUGMENT_ON}"
            )
        return cfg

    @property
    def near_pairs(self) -> bool:
        """The crops are drawn by the weighting's density (the loss weights are uniform)."""
        return self.crop.get("policy") == "near_pairs"


# ---------------------------------------------------------------- preemption


class Preemption:
    """A scheduler's checkpoint signal (submitit's USR2: SLURM preempts the job or its time
    limit nears), deferred to the loop's next sync point.

    `install` replaces the signal's handler by one that only records it; at the loop's next sync
    point (`_Run.agree`: every `sync_every` steps, all ranks, one all-reduce with the flag, so
    that every rank stops after the same step) the loop saves checkpoint.pt and calls `fire`,
    which hands the signal to the handler it replaced (submitit's: pickle the Trainer, requeue
    the job, exit). A signal costs no step, where checkpointing in the handler itself could
    save weights half-way through an optimiser step, and waiting for the periodic checkpoint
    would lose up to `checkpoint_every` steps.
    """

    def __init__(self, signum: int = signal.SIGUSR2, then=None) -> None:
        self.signum = signum
        self.then = then if then is not None else signal.getsignal(signum)
        self.pending: tuple | None = None

    def install(self) -> Preemption:
        signal.signal(self.signum, self._record)
        return self

    def _record(self, signum, frame) -> None:
        self.pending = (signum, frame)

    def fire(self, step: int, is_main: bool) -> None:
        signum, frame = self.pending or (self.signum, None)
        if is_main:
            print(
                f"checkpointed at step {step} on {signal.Signals(signum).name}",
                file=sys.stderr,
                flush=True,
            )
        if callable(self.then):
            self.then(signum, frame)  # submitit: requeues and exits on rank 0, returns elsewhere
        raise SystemExit(-1)  # the other ranks (or no handler): the requeued job resumes here


# ---------------------------------------------------------------- distributed helpers


def init_distributed() -> tuple[int, int, torch.device]:
    """This process's device (never a silent CPU where GPUs were given: twbyol.hardware) and
    the process group described by the environment (submitit's TorchDistributedEnvironment
    exports RANK, WORLD_SIZE, MASTER_ADDR/PORT, LOCAL_RANK)."""
    device = pick_device(int(os.environ.get("LOCAL_RANK", "0")))
    distributed.init(device)
    return distributed.rank(), distributed.world_size(), device


def sync_batchnorm(model: nn.Module, world: int, device: torch.device) -> nn.Module:
    """Under DDP on GPUs, BatchNorm layers of the online network and of the EMA target (where
    the method has one) become SyncBatchNorm, in place. rho-BYOL normalises both networks with
    batch statistics synced over the GPUs (BN.NORM_TYPE sync_batchnorm, the projector's and
    predictor's BN too; the target runs in train mode, SlowFast models/contrastive.py), and so
    does MoCo-v3 (both encoders). On CPU (gloo) BN stays per process: SyncBatchNorm needs GPUs.
    Parameter objects and state_dict keys are kept, so checkpoints load either way."""
    if world > 1 and device.type == "cuda":
        model.online = nn.SyncBatchNorm.convert_sync_batchnorm(model.online)
        if isinstance(getattr(model, "target", None), nn.Module):
            model.target = nn.SyncBatchNorm.convert_sync_batchnorm(model.target)
    return model


# ---------------------------------------------------------------- the run


def supervision(cfg: TrainConfig, clips: list[tuple[str, int]]) -> tuple[list, dict | None]:
    """For the runs that learn from labels (`supervised`, the `oracle` weighting): the labelled
    clips of the protocol's SubmissionTrain and their binary labels ({clip: (n_tasks,
    n_frames)}), NaN on the clips where a task is scored (its publicTest/privateTest), so that
    no test label is ever seen; other runs: all clips, no labels."""
    if not uses_labels(asdict(cfg)):
        return clips, None
    lab = load_labels(cfg.labels)
    protocol = read_protocol(cfg.protocol)
    tasks = lab.tasks
    binary = [
        t
        for t, kind in enumerate(lab.task_types)
        if kind == "Discrete"
        and set(np.unique(lab.label_array[t][np.isfinite(lab.label_array[t])])) <= {0.0, 1.0}
    ]
    spans = dict(zip(lab.clips, zip(lab.starts, lab.ends)))
    train_of = {
        t: set(protocol.split_of(tasks[t])["SubmissionTrain"])
        if tasks[t] in protocol.task_split
        else set()
        for t in binary
    }
    keep = set().union(*train_of.values()) if train_of else set()
    labels = {}
    for c, _ in clips:
        if c in keep:
            y = lab.label_array[binary, spans[c][0] : spans[c][1]].copy()  # (n_binary, T)
            for row, t in enumerate(binary):
                if c not in train_of[t]:
                    y[row] = np.nan
            labels[c] = y
    return [c for c in clips if c[0] in keep], labels


def build_model(cfg: TrainConfig, n_tasks: int = 0) -> nn.Module:
    """The run's method; under near_pairs crops its loss weights are uniform (the weighting
    shapes the crop pairs instead: `crop_config`)."""
    torch.manual_seed(cfg.seed)  # same init on every rank; DDP also broadcasts rank 0's
    return build_method(replace(cfg, weighting="uniform") if cfg.near_pairs else cfg, n_tasks)


def crop_config(cfg: TrainConfig) -> CropConfig:
    """The run's crops; near_pairs draws its pairs by the run's weighting and tau."""
    return (
        CropConfig(
            **{**cfg.crop, "density": cfg.weighting, "tau": cfg.tau, "tau_unit": cfg.time_unit}
        )
        if cfg.near_pairs
        else CropConfig(**cfg.crop)
    )


def save_model(cfg: TrainConfig, backbone: nn.Module) -> None:
    """model.pt: the online backbone (what downstream stages embed with) and the config."""
    out = Path(cfg.out_dir) / "model.pt"
    with io.atomic_path(out) as tmp:
        torch.save(
            {
                "backbone": backbone.state_dict(),
                "config": asdict(cfg),
                "feature_dim": int(backbone.feature_dim),
            },
            tmp,
        )


def load_clips(cfg: TrainConfig) -> tuple[list[tuple[str, int]], dict[str, float]]:
    """(clip id, frames) of the clips to pretrain on: those of `pretrain_splits` (all when
    empty), then the run's `data_fraction` of them; and {clip id: frame rate} of them (times
    in seconds are converted with it)."""
    # the clip list (clips.tsv) unless splits are chosen: only index.tsv has them
    index = read_index(cfg.index) if cfg.pretrain_splits else read_clips(cfg.index)
    if cfg.pretrain_splits:
        want = set(cfg.pretrain_splits)
        index = index[[bool(want & set(s.split(","))) for s in index["splits"]]]
        if index.empty:
            raise ValueError(f"{cfg.index}: no clip is in pretrain_splits {sorted(want)}")
    ids = select_clips(list(index["clip_id"]), cfg.data_fraction, cfg.data_seed)
    n = dict(zip(index["clip_id"], index["n_frames"]))
    fps = dict(zip(index["clip_id"], index["fps"]))
    return [(c, int(n[c])) for c in ids], {c: float(fps[c]) for c in ids}


def train(cfg: TrainConfig, preemption: Preemption | None = None) -> dict:
    """Run (or resume) one pretraining run; returns the efficiency record (on every rank).
    `preemption`: the scheduler's checkpoint signal, honoured at the loop's next sync point
    (the submitted job installs it; see Preemption)."""
    rank, world, device = init_distributed()  # first: a job that cannot use its GPUs fails here
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if device.type == "cpu":
        keep_large_allocations()
    is_main = rank == 0
    clips, fps = load_clips(cfg)
    clips, labels = supervision(cfg, clips)
    if is_main:
        print(
            f"{cfg.run_id} seed {cfg.seed}: {len(clips)} clips, "
            f"{sum(n for _, n in clips)} frames (splits: "
            f"{', '.join(cfg.pretrain_splits) or 'all'}; data_fraction {cfg.data_fraction})",
            file=sys.stderr,
            flush=True,
        )
    n_tasks = len(next(iter(labels.values()))) if labels else 0
    model = build_model(cfg, n_tasks).to(device)
    if channels_last_wanted(cfg.channels_last, device):
        to_channels_last(model)

    if cfg.method == "random_init":  # the control: the initialisation itself, no training
        if is_main:
            line = {
                "run_id": cfg.run_id,
                "seed": cfg.seed,
                "method": cfg.method,
                "epoch": 0,
                "step": 0,
                "loss": None,
                "lr": 0.0,
                "samples": 0,
                "wall_s": 0.0,
            }
            print(json.dumps(line), flush=True)
            io.write_text(out_dir / "metrics.jsonl", json.dumps(line) + "\n")
            eff = efficiency(0.0, 0, world, device)
            io.write_json(out_dir / "efficiency.json", eff)
            save_model(cfg, model.online.backbone)
        return eff if is_main else {}

    # ------------------------------------------------------------ data
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by world size {world}")
    per_rank = cfg.batch_size // world
    samples = cfg.samples_per_epoch or len(clips)
    steps_per_epoch = samples // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"samples_per_epoch {samples} < batch_size {cfg.batch_size}: no step per epoch"
        )
    dataset = TemporalCropDataset(
        cfg.frames_dir,
        clips,
        crop_config(cfg),
        samples,
        cfg.seed,
        labels,
        fps=fps,
        time_unit=cfg.time_unit,
        augment_on=cfg.augment_on,
    )

    # ------------------------------------------------------------ model, optimiser, schedules
    amp_dtype = autocast_dtype(cfg.precision, cfg.cpu_bf16, device)
    use_amp = amp_dtype is not None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    sync_batchnorm(model, world, device)
    online = model.online
    if world > 1:
        online = nn.parallel.DistributedDataParallel(
            model.online, device_ids=[device.index] if device.type == "cuda" else None
        )
    # linear scaling rule (Goyal et al. 2017), as BYOL; rho-BYOL's BASE_LR and
    # WARMUP_START_LR scale with the number of machines, i.e. linearly in the batch too
    scale = cfg.batch_size / 256
    lr = cfg.lr * scale
    optimizer = build_optimizer(
        model.online, cfg.optimizer, lr, cfg.weight_decay, cfg.lars_momentum, cfg.lars_nesterov
    )
    total = cfg.epochs * steps_per_epoch
    lr_sched = cosine_schedule(
        lr,
        0.0,
        total,
        int(cfg.warmup_epochs * steps_per_epoch),
        cfg.warmup_start_lr * scale,
        cfg.cosine_after_warmup,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    amp = {"device_type": device.type, "dtype": amp_dtype or torch.bfloat16, "enabled": use_amp}

    # ------------------------------------------------------------ resume, loop
    run = _Run(
        cfg,
        model,
        online,
        optimizer,
        scaler,
        lr_sched,
        amp,
        total,
        steps_per_epoch,
        rank,
        world,
        device,
        out_dir / "checkpoint.pt",
        dataset.crop if dataset.augment_on == "device" else None,
    )
    run.resume()
    step = run.step

    def epoch_keys(epoch: int) -> list[tuple[int, int]]:
        """This rank's sample keys of `epoch`, in step order (a function of seed and epoch)."""
        order = np.random.default_rng([cfg.seed, epoch, 2**31]).permutation(samples)
        order = order[: steps_per_epoch * cfg.batch_size].reshape(steps_per_epoch, world, per_rank)
        return [(epoch, int(k)) for k in order[:, rank].ravel()]

    # One loader over every batch left in the run: its workers prefetch across epoch
    # boundaries instead of starting anew each epoch (with the synthetic study's 8-step
    # epochs, a fresh loader per epoch left the step waiting for its first batch 40 times).
    first, in_epoch = divmod(step, steps_per_epoch)
    keys = epoch_keys(first)[in_epoch * per_rank :] if step < total else []
    keys += [k for e in range(first + 1, cfg.epochs) for k in epoch_keys(e)]
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=keys,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    run.t0 = time.time()
    run.warm_at = min(step + WARM_STEPS, total)
    run.progress = Progress(total, "step", every=cfg.log_every, start=step)
    run.line_step, run.line_t = step, time.perf_counter()
    run.board = tensorboard_writer(out_dir / "tensorboard") if is_main else None
    model.train()
    batches = iter(loader)
    for epoch in range(first, cfg.epochs):
        left = steps_per_epoch - (in_epoch if epoch == first else 0)
        train_one_epoch(run, itertools.islice(batches, left), preemption)

    if run.board is not None:
        run.board.close()
    wall = run.wall()
    steady = None  # samples/s from the end of step warm_at to the end of the last step
    if run.t_warm is not None and run.t_end is not None and total > run.warm_at:
        steady = (total - run.warm_at) * cfg.batch_size / max(run.t_end - run.t_warm, 1e-9)
    eff = {
        **efficiency(wall, total * cfg.batch_size, world, device),
        "steady_samples_per_s": steady,
        "autocast": str(amp_dtype).removeprefix("torch.") if use_amp else None,
        "steady_steps": total - run.warm_at if steady is not None else 0,
    }
    if is_main:
        # rewritten here too: a run resumed from a final checkpoint (killed after its last
        # step, its outputs removed as incomplete) has no epoch left to write them in
        run.write_metrics()
        io.write_json(out_dir / "efficiency.json", eff)
        save_model(cfg, model.online.backbone)
    distributed.barrier()
    return eff


def code_digest(cfg: TrainConfig) -> str:
    """sha256 (16 hex digits) of the source files a pretraining of cfg.method runs
    (twbyol.deps.pretrain_modules: the launcher, the loop, that method), by path and bytes."""
    h = hashlib.sha256()
    for rel in deps.pretrain_modules(cfg.method):
        path = deps.ROOT.parent / rel
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def resume_identity(cfg: TrainConfig) -> dict:
    """What a checkpoint must share with a run to be resumed by it: the config (every field
    but RESUME_IGNORES) and the training code's digest."""
    config = {k: v for k, v in asdict(cfg).items() if k not in RESUME_IGNORES}
    return {"config": json.loads(json.dumps(config)), "code": code_digest(cfg)}


def resumable(ck: dict, ours: dict, any_code: bool = False) -> str | None:
    """None if checkpoint `ck` may be resumed by a run of resume identity `ours`, else why
    not (the settings that differ, old -> new, or the code digests); `any_code`:
    training.resume_any_code."""
    if "identity" not in ck:
        return "it records no config (taken by an older twbyol)"
    theirs = json.loads(ck["identity"])
    keys = sorted(set(theirs["config"]) | set(ours["config"]))
    differ = [k for k in keys if theirs["config"].get(k) != ours["config"].get(k)]
    if differ:
        shown = "; ".join(
            f"{k} {json.dumps(theirs['config'].get(k))} -> {json.dumps(ours['config'].get(k))}"
            for k in differ
        )
        return f"it was taken under another config ({shown})"
    if theirs["code"] != ours["code"] and not any_code:
        return (
            f"it was taken under other training code ({theirs['code']}, now {ours['code']}; "
            "training.resume_any_code: true resumes it)"
        )
    return None


@dataclass(eq=False)
class _Run:
    """The live state of a run's training loop: model, optimiser, schedules, the step, the
    metrics lines so far and the running epoch's sums; checkpointed and resumed as a whole."""

    cfg: TrainConfig
    model: nn.Module
    online: nn.Module  # the model's online part, DDP-wrapped when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    lr_sched: np.ndarray
    amp: dict  # torch.autocast's arguments
    total: int  # steps of the run
    steps_per_epoch: int
    rank: int
    world: int
    device: torch.device
    ckpt_path: Path
    augment: CropConfig | None = None  # augment each batch on the device with these crops
    step: int = 0
    warm_at: int = 0  # the step after which the steady rate is timed ...
    t_warm: float | None = None  # ... from this time (start-up, first batches, autotuning)
    t_end: float | None = None  # ... to the end of the last step (the device synced)
    wall_before: float = 0.0  # seconds trained before the last resume
    t0: float = field(default_factory=time.time)
    history: list = field(default_factory=list)  # the epochs' metrics lines
    progress: Progress | None = None  # rank 0's progress lines (twbyol.progress)
    board: object | None = None  # rank 0's TensorBoard writer, when the extra is installed
    data_s: float = 0.0  # seconds the loop waited for batches since the last progress line
    line_step: int = 0  # the step and perf_counter time of the last progress line
    line_t: float = field(default_factory=time.perf_counter)
    last_line: dict = field(default_factory=dict)  # the numbers of the last progress line

    def __post_init__(self) -> None:
        self.is_main = self.rank == 0
        # this rank's first step with a non-finite loss (-1: none), kept on the device and
        # read at the sync points
        self.nonfinite_at = torch.full((), -1.0, dtype=torch.float64, device=self.device)
        # what its checkpoints record and a resume compares: the code digested once, as the
        # process loaded it (a file edited during the run does not change what runs)
        self.identity = resume_identity(self.cfg)
        self.new_epoch()

    def new_epoch(self) -> None:
        # the epoch so far (a checkpoint on a signal falls mid-epoch): the loss over the steps
        # taken, the statistics over every batch (floats, or tensors on the device until a
        # line is logged); checkpointed, so that a resumed epoch's line is the uninterrupted
        # run's
        self.sums: dict[str, float | torch.Tensor] = {"loss": 0.0}
        self.n_in_epoch = self.skipped = 0

    def wall(self) -> float:
        return self.wall_before + time.time() - self.t0

    def resume(self) -> None:
        """Load checkpoint.pt if there is one and it is this run's (`resumable`): weights,
        optimiser, scaler, step, wall time, the metrics lines and this rank's sums of the
        running epoch. A checkpoint of another config or code is renamed aside (kept, named in
        the log) and the run starts anew."""
        if not self.ckpt_path.exists():
            return
        ck = torch.load(self.ckpt_path, map_location=self.device, weights_only=True)
        why = resumable(ck, self.identity, self.cfg.resume_any_code)
        distributed.barrier()  # every rank has read the file before it is set aside
        if why is not None:
            aside = self.ckpt_path.with_name(
                f"checkpoint.{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.set-aside.pt"
            )
            if self.is_main:
                os.replace(self.ckpt_path, aside)
                print(
                    f"not resuming {self.ckpt_path}: {why}. Kept as {aside.name}; starting "
                    f"run {self.cfg.run_id} seed {self.cfg.seed} anew",
                    file=sys.stderr,
                    flush=True,
                )
            distributed.barrier()
            return
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scaler.load_state_dict(ck["scaler"])
        self.step, self.wall_before = int(ck["step"]), float(ck["wall_s"])
        self.history = [json.loads(s) for s in ck["history"]]
        if "epoch" in ck:  # absent in a checkpoint taken at an epoch's end before this field
            parts = json.loads(ck["epoch"])
            if len(parts) != self.world:
                raise ValueError(
                    f"{self.ckpt_path}: taken by {len(parts)} processes, resumed by "
                    f"{self.world}; a run resumes at the world size it started with"
                )
            part = parts[self.rank]  # each rank's own sums
            self.sums, self.n_in_epoch, self.skipped = part["sums"], part["n"], part["skipped"]
        if self.is_main:
            code, now = json.loads(ck["identity"])["code"], self.identity["code"]
            print(
                f"resumed from {self.ckpt_path} at step {self.step}/{self.total}"
                + (
                    f" (taken under training code {code}, running {now}: training.resume_any_code)"
                    if code != now
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )

    def agree(self, preemption: Preemption | None) -> bool:
        """A sync point, taken by every rank at the same step: one all-reduce of the
        preemption flag and each rank's first non-finite loss. Raises FloatingPointError on
        every rank if any rank had one (naming the ranks and steps); returns whether any rank
        holds the checkpoint signal."""
        flags = torch.zeros(1 + self.world, dtype=torch.float64, device=self.device)
        flags[0] = float(preemption is not None and preemption.pending is not None)
        flags[1 + self.rank] = self.nonfinite_at + 1  # 0: none
        got = distributed.all_reduce(flags).tolist()
        bad = {r: int(v) - 1 for r, v in enumerate(got[1:]) if v > 0}
        if bad:
            where = ", ".join(f"rank {r} at step {s}" for r, s in sorted(bad.items()))
            raise FloatingPointError(
                f"run {self.cfg.run_id} seed {self.cfg.seed}: non-finite loss ({where}; "
                f"checked at step {self.step}); stopping rather than training on garbage. "
                f"The last checkpoint predates it."
            )
        return got[0] > 0

    def save_checkpoint(self) -> None:
        sums = {k: float(v) for k, v in self.sums.items()}
        part = {"sums": sums, "n": self.n_in_epoch, "skipped": self.skipped}
        parts = distributed.all_gather_object(part)  # every rank's epoch so far
        if self.is_main:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "step": self.step,
                "wall_s": self.wall(),
                "history": [json.dumps(h) for h in self.history],
                "epoch": json.dumps(parts),
                "identity": json.dumps(self.identity),
            }
            with io.atomic_path(self.ckpt_path) as tmp:
                torch.save(state, tmp)
        distributed.barrier()

    def write_metrics(self) -> None:
        if self.is_main:
            io.write_text(
                self.ckpt_path.parent / "metrics.jsonl",
                "".join(json.dumps(h) + "\n" for h in self.history),
            )

    def end_epoch(self, momentum: float) -> None:
        """The epoch's metrics line: averaged over this process's steps of the epoch; the loss
        over the steps taken, the statistics (weights, ess) over every batch, skipped ones
        included; appended, printed and written; then a checkpoint."""
        cfg = self.cfg
        t = torch.stack(
            [torch.as_tensor(v, device=self.device).double() for v in self.sums.values()]
        )
        sums = dict(zip(self.sums, (distributed.all_reduce(t) / self.world).tolist()))
        taken = self.n_in_epoch - self.skipped  # the same on every rank: skips are global
        means = {k: v / max(self.n_in_epoch, 1) for k, v in sums.items()}
        means["loss"] = sums["loss"] / taken if taken else None
        line = {
            "run_id": cfg.run_id,
            "seed": cfg.seed,
            "method": cfg.method,
            "epoch": self.step // self.steps_per_epoch,
            "step": self.step,
            **means,
            "skipped_steps": self.skipped,
            "lr": float(self.lr_sched[self.step - 1]),
            "momentum": momentum,
            "samples": self.step * cfg.batch_size,
            "wall_s": round(self.wall(), 3),
        }
        self.history.append(line)
        if self.is_main:
            print(json.dumps(line), flush=True)
            if self.board is not None:
                for k, v in line.items():
                    if isinstance(v, (int, float)) and k not in ("seed", "epoch", "step"):
                        self.board.add_scalar(f"epoch/{k}", v, self.step)
        self.write_metrics()
        self.new_epoch()
        self.save_checkpoint()


def train_one_epoch(run: _Run, batches, preemption: Preemption | None = None) -> None:
    """The rest of one epoch: a step per batch of `batches` (every batch left in the epoch),
    the periodic checkpoints, the checkpoint signal honoured at the next sync point, and the
    epoch's metrics line and checkpoint once its last step is taken."""
    cfg, device = run.cfg, run.device
    momentum = None
    for batch in _waited(batches, run):
        # crops (or raw uint8 frames and their augmentation parameters) to the device; the
        # centres and targets stay on the host (pinned), where BYOL weighs its pairs without
        # waiting for the device; a method that needs them there copies them itself
        *crops, centres, targets = batch
        crops = [t.to(device, non_blocking=True) for t in crops]
        if run.augment is not None:  # (raw uint8 frames, parameters)
            crops = [augment_batch(crops[0], crops[1], run.augment)]
        batch = [crops[0], centres, targets]
        momentum = ema_momentum(run.step, run.total, cfg.ema_base)
        loss, stats = train_step(
            cfg,
            run.model,
            run.online,
            run.optimizer,
            run.scaler,
            batch,
            run.step,
            float(run.lr_sched[run.step]),
            momentum,
            run.amp,
        )
        if loss is not None:  # on the device: read at the next sync point
            run.nonfinite_at = torch.where(
                (run.nonfinite_at < 0) & ~torch.isfinite(loss), float(run.step), run.nonfinite_at
            )
        run.step += 1
        if run.step in (run.warm_at, run.total):  # the steady rate's clock, the device synced
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if run.step == run.warm_at:
                run.t_warm = time.time()
            if run.step == run.total:
                run.t_end = time.time()
        run.n_in_epoch += 1
        run.skipped += loss is None
        for k, v in {"loss": 0.0 if loss is None else loss, **stats}.items():
            run.sums[k] = run.sums.get(k, 0.0) + v
        if run.is_main and run.progress is not None and run.progress.due(run.step):
            print(progress_line(run, loss), flush=True)
            if run.board is not None:
                for k, v in run.last_line.items():
                    run.board.add_scalar(f"step/{k}", v, run.step)
        epoch_end = run.step % run.steps_per_epoch == 0
        periodic = bool(cfg.checkpoint_every) and run.step % cfg.checkpoint_every == 0
        if not (epoch_end or periodic or (cfg.sync_every and run.step % cfg.sync_every == 0)):
            continue
        # a sync point: every rank at this step; raises on a non-finite loss before anything
        # is checkpointed
        preempted = run.agree(preemption)
        if epoch_end:
            run.end_epoch(momentum)
        elif periodic or preempted:
            run.save_checkpoint()
        if preempted:
            preemption.fire(run.step, run.is_main)


def tensorboard_writer(folder: Path):
    """A TensorBoard SummaryWriter of `folder` when the optional extra `tensorboard` is
    installed (pyproject.toml), else None: the run's progress and epoch scalars, for
    `tensorboard --logdir results/{exp}/pretrain`."""
    try:
        # deferred: an optional extra; importing it costs ~1 s where it is installed
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))


def _waited(batches, run: _Run):
    """`batches`, adding the time spent waiting for each (the data loader) to run.data_s."""
    batches = iter(batches)
    while True:
        t = time.perf_counter()
        batch = next(batches, None)
        run.data_s += time.perf_counter() - t
        if batch is None:
            return
        yield batch


def progress_line(run: _Run, loss: torch.Tensor | None) -> str:
    """Rank 0's progress line at run.step: epoch, step, this step's loss and the epoch's mean
    so far, samples/s, the time per step split into waiting for data and the rest (compute;
    on a GPU the host's side of it, the device running ahead until a sync), peak memory and
    the ETA. Reading the loss waits for the device: done only when a line is due."""
    cfg, p = run.cfg, run.progress
    now = time.perf_counter()
    steps = max(run.step - run.line_step, 1)
    data = run.data_s / steps
    step_s = (now - run.line_t) / steps
    run.data_s, run.line_step, run.line_t = 0.0, run.step, now
    taken = run.n_in_epoch - run.skipped
    mean = float(run.sums["loss"]) / taken if taken else float("nan")
    peak, kind = peak_memory_mb(run.device)
    epoch = min(run.step // run.steps_per_epoch + 1, cfg.epochs)
    sps = p.rate(run.step) * cfg.batch_size
    run.last_line = {"samples_per_s": sps, "data_ms": data * 1e3, "peak_mem_mb": peak}
    run.last_line["compute_ms"] = max(step_s - data, 0.0) * 1e3
    if loss is not None:
        run.last_line["loss"] = float(loss)
    return p.line(
        run.step,
        prefix=f"[{cfg.run_id} seed {cfg.seed}] epoch {epoch}/{cfg.epochs} |",
        loss=f"{float(loss):.4f}" if loss is not None else "none (no pair weighed)",
        epoch_mean=f"{mean:.4f}",
        samples_per_s=f"{sps:.1f}",
        data=f"{data * 1e3:.1f} ms/step",
        compute=f"{max(step_s - data, 0.0) * 1e3:.1f} ms/step",
        peak_mem=f"{peak:.0f} MB ({kind})",
    )


def train_step(
    cfg: TrainConfig,
    model: nn.Module,
    online: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: list[torch.Tensor],
    step: int,
    lr: float,
    momentum: float,
    amp: dict,
) -> tuple[float | None, dict[str, float]]:
    """One step at step index `step` on `batch` = (crops, centres, targets) on the device:
    forward under autocast (`amp`: torch.autocast's arguments), backward of loss_scale x the
    loss, optimiser and scaler step at `lr`, EMA of the target at `momentum`.

    A batch on which the method returns loss None (nothing to learn from: every pair weighs 0)
    changes nothing: no backward, no optimiser step (AdamW's and LARS's momentum and weight
    decay would move the weights on a zero gradient), no EMA step, no scaler update.
    Returns the loss, detached, on the device (None for such a batch; its finiteness is
    checked at the loop's sync points, not here: reading it would wait for the device every
    step) and the method's statistics (floats or device tensors).
    """
    crops, centres, targets = batch
    for g in optimizer.param_groups:
        g["lr"] = lr
    with torch.autocast(**amp):
        loss, stats = model(crops, centres, online=online, targets=targets, step=step)
    if loss is None:
        return None, stats
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss * cfg.loss_scale if cfg.loss_scale != 1.0 else loss).backward()
    scaler.step(optimizer)
    scaler.update()
    model.update_target(momentum)
    return loss.detach(), stats


def efficiency(wall: float, samples: int, world: int, device: torch.device) -> dict:
    n_gpus = world if device.type == "cuda" else 0
    peak, kind = peak_memory_mb(device)
    return {
        "wall_s": round(wall, 3),
        "gpu_hours": wall * n_gpus / 3600,
        "n_gpus": n_gpus,
        "world_size": world,
        "samples": samples,
        "samples_per_s": samples / wall if wall > 0 else 0.0,
        "peak_mem_mb": round(peak, 1),
        "peak_mem_kind": kind,
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--config", required=True, help="the run's resolved config (inline JSON or a file)"
    )
    args = ap.parse_args(argv)
    train(TrainConfig.from_dict(io.json_arg(args.config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Temporal crops of a clip, video augmentation, and the pretraining dataset.

A sample is rho crops of `num_frames` frames taken every `stride` source frames from one
clip, with each crop's centre frame, so the frame distance dt of every crop pair is known.
All randomness of a sample is derived from (seed, epoch, sample index): the data a run sees
does not depend on the number of loader workers, and a resumed run needs no RNG state to
replay its epoch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from twbyol.data.augment import ParamDrawer
from twbyol.data.crops import CROP_POLICIES, CropConfig
from twbyol.data.transforms import build_augmentation
from twbyol.methods.byol import temporal_weight
from twbyol.models.backbones import to_model_input
from twbyol.settings import LABELLED_WEIGHTINGS, TIME_UNITS

# where a crop is augmented: in the loader worker (torchvision transforms, per crop) or on
# the trainer's device (twbyol.data.augment, the batch at once; the workers only slice)
AUGMENT_ON = ("loader", "device")


def sample_crop_starts(
    n_frames: int, rho: int, span: int, policy: str, gap: int, rng: np.random.Generator
) -> np.ndarray:
    """First frame of each of `rho` crops covering `span` frames of an `n_frames` clip.

    policy: `uniform` — independent uniform starts (rho-BYOL); `max_gap` — every centre
    within `gap` frames of the first crop's (so dt <= 2*gap between any two, <= gap to the
    first); `min_gap` — consecutive crops at least `gap` frames apart (far pairs only,
    where the weighting matters most); falls back to the largest feasible gap when the clip
    is too short. `near_pairs` draws from a density: `near_pair_starts`, `matched_pair_starts`.
    Returns (rho,) int64 starts in [0, n_frames - span].
    """
    last = n_frames - span
    if last < 0:
        raise ValueError(f"clip of {n_frames} frames is shorter than a crop span of {span}")
    if policy == "near_pairs":
        raise ValueError(
            "crop_policy near_pairs: drawn by near_pair_starts / matched_pair_starts "
            "from the weighting's density (TemporalCropDataset), not here"
        )
    if policy == "uniform":
        return rng.integers(0, last + 1, size=rho)
    if policy == "max_gap":
        first = rng.integers(0, last + 1)
        lo, hi = max(0, first - gap), min(last, first + gap)
        return np.concatenate([[first], rng.integers(lo, hi + 1, size=rho - 1)])
    if policy == "min_gap":
        g = min(gap, last // max(rho - 1, 1))
        slack = last - g * (rho - 1)  # free frames to distribute between and around crops
        cuts = np.sort(rng.integers(0, slack + 1, size=rho))
        starts = cuts + g * np.arange(rho)
        return rng.permutation(starts)
    raise ValueError(f"crop_policy: unknown {policy!r}; expected one of {CROP_POLICIES}")


def gap_density(last: int, weighting: str, tau: float) -> np.ndarray:
    """p(dt) of the `near_pairs` crop policy on starts in [0, last]: the gap of two independent
    uniform starts (last + 1 ordered pairs at dt = 0, 2 (last + 1 - dt) at dt > 0) reweighted by
    the weighting's w(dt) (twbyol.methods.byol.temporal_weight). BYOL on such pairs with
    uniform loss weights has TW-BYOL's expected objective (uniform pairs, each weighted by
    w(dt), normalised by the weights) at the full batch's effective sample size.
    Returns (last + 1,) float64 summing to 1."""
    dt = np.arange(last + 1)
    pairs = np.where(dt == 0, last + 1, 2 * (last + 1 - dt)).astype(np.float64)
    p = pairs * temporal_weight(torch.from_numpy(dt), weighting, tau).double().numpy()
    return p / p.sum()  # > 0: every w(0) is 1


def near_pair_starts(density: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two starts of the `near_pairs` policy: the gap dt from `density` (`gap_density`), the
    pair uniform among the pairs of that gap, in random order: (s1, s2) then has the density
    of two uniform starts times w(|s1 - s2|). Returns (2,) int64."""
    last = len(density) - 1
    dt = int(rng.choice(last + 1, p=density))
    lo = int(rng.integers(0, last - dt + 1))
    return rng.permutation(np.array([lo, lo + dt]))


def state_codes(labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The oracle's ground-truth state of each centre frame as an integer: frames whose label
    vectors are equal (a NaN label a value of its own, as `twbyol.methods.byol.same_state`)
    share a code; a frame with no usable label gets -1.
    labels (K, n_frames) 0/1/NaN; centres (n,) int frame indices. Returns (n,) int64."""
    cols = labels[:, centres].T  # (n, K)
    _, codes = np.unique(np.nan_to_num(cols, nan=-1.0), axis=0, return_inverse=True)
    return np.where(np.isfinite(cols).any(1), codes.ravel(), -1)


def crop_states(labels: np.ndarray, last: int, num_frames: int, stride: int) -> np.ndarray:
    """The ground-truth state each crop shows: for each start in [0, last], the majority
    `state_codes` over the crop's frames (num_frames frames every `stride`; a tie goes to the
    lower code; -1 where none of them is labelled). labels (K, n_frames). Returns (last + 1,)
    int64."""
    frame_codes = state_codes(labels, np.arange(labels.shape[1]))
    codes = frame_codes[np.arange(last + 1)[:, None] + stride * np.arange(num_frames)]
    n_states = int(frame_codes.max()) + 1
    if n_states <= 0:
        return np.full(last + 1, -1)
    counts = np.stack([(codes == k).sum(1) for k in range(n_states)], 1)  # (last + 1, S)
    return np.where(counts.max(1) > 0, counts.argmax(1), -1)


def matched_pair_starts(
    codes: np.ndarray, density: np.ndarray, same: bool, rng: np.random.Generator
) -> np.ndarray:
    """Two starts of the `near_pairs` policy under the oracle (the positive control, `same`)
    or the anti oracle (the anti control): crops that show the same behaviour, or two
    different ones (`crop_states`), at a gap drawn from `density` (uniform starts' gaps:
    `gap_density(last, "uniform", ...)`), the pair uniform among the clip's pairs of that gap
    that qualify; a gap with none is drawn again. The controls thus differ from uniform
    crops in behavioural consistency alone, not in their gaps (up to the gaps a clip cannot
    offer: tests/test_sampling.py measures the difference). Returns (2,) int64 in random
    order."""
    last = len(codes) - 1
    for _ in range(1000):
        dt = int(rng.choice(last + 1, p=density))
        a, b = codes[: last + 1 - dt], codes[dt:]
        ok = np.flatnonzero((a >= 0) & (b >= 0) & ((a == b) if same else (a != b)))
        if len(ok):
            lo = int(ok[rng.integers(len(ok))])
            return rng.permutation(np.array([lo, lo + dt]))
    what = "the same behaviour" if same else "two different behaviours"
    raise ValueError(f"crop_policy near_pairs: no pair of crops of this clip shows {what}")


def select_clips(clip_ids: list[str], fraction: float, seed: int = 0) -> list[str]:
    """A reproducible `fraction` of clips (at least one). Nested: for one seed, the 25 %
    subset is contained in the 50 % subset, so data-fraction curves compare like with like."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"data_fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(len(clip_ids))
    keep = sorted(order[: max(1, math.ceil(fraction * len(clip_ids)))])
    return [clip_ids[i] for i in keep]


class TemporalCropDataset(torch.utils.data.Dataset):
    """Item (e, k): rho augmented crops of clip (k mod n_clips) drawn for epoch e, and their
    centre frames. The epoch travels in the key so that persistent loader workers need no
    per-epoch state.

    Returns crops (rho, 1, T, h, w) float32 normalised, centres (rho,) float32 in source
    frames (in seconds, frame / the clip's `fps`, when `time_unit` is "seconds": the unit of
    the run's tau, so that the loss's dt is in it), and targets (rho, n_tasks): the labels of
    each crop's centre frame when `labels` ({clip_id: (n_tasks, n_frames)}) is given, else
    (rho, 0). Frame arrays are opened as memmaps lazily, once per worker process; near_pairs
    densities and oracle states once per clip length (and tau) / clip. Crop gaps in seconds
    (crop.gap_s) and a near_pairs tau in seconds become frames with each clip's `fps`.
    """

    def __init__(
        self,
        frames_dir: str | Path,
        clips: list[tuple[str, int]],
        crop: CropConfig,
        samples_per_epoch: int,
        seed: int,
        labels: dict[str, np.ndarray] | None = None,
        fps: dict[str, float] | None = None,
        time_unit: str = "frames",
        augment_on: str = "loader",
    ) -> None:
        if augment_on not in AUGMENT_ON:
            raise ValueError(f"augment_on: {augment_on!r}, expected one of {AUGMENT_ON}")
        if time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit: {time_unit!r}, expected one of {TIME_UNITS}")
        needs_fps = time_unit == "seconds" or crop.gap_s is not None or crop.tau_unit == "seconds"
        missing = [c for c, _ in clips if needs_fps and not (fps or {}).get(c, 0) > 0]
        if missing:
            raise ValueError(
                f"times in seconds need each clip's frame rate; none for {missing[:3]}"
            )
        self.fps = dict(fps or {})
        self.time_unit = time_unit
        self.frames_dir = Path(frames_dir)
        self.clips = clips  # (clip_id, n_frames)
        self.crop = crop
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.labels = labels
        self.augment_on = augment_on
        self.augment = build_augmentation(crop)
        self.draw = ParamDrawer(self.augment)  # augment_on device: its parameters only
        self._arrays: dict[str, np.ndarray] = {}
        self._gap_density: dict[tuple, np.ndarray] = {}  # near_pairs: per last start, tau
        self._states: dict[str, np.ndarray] = {}  # near_pairs with the oracle: per clip

    def __len__(self) -> int:
        return self.samples_per_epoch

    def frames(self, clip_id: str) -> np.ndarray:
        if clip_id not in self._arrays:
            self._arrays[clip_id] = np.load(self.frames_dir / f"{clip_id}.npy", mmap_mode="r")
        return self._arrays[clip_id]

    def starts(
        self, clip_id: str, n_frames: int, span: int, rng: np.random.Generator
    ) -> np.ndarray:
        """(rho,) first frames of a sample's crops, by the crop policy."""
        c = self.crop
        if c.policy != "near_pairs":
            gap = c.gap if c.gap_s is None else round(c.gap_s * self.fps[clip_id])
            return sample_crop_starts(n_frames, c.rho, span, c.policy, gap, rng)
        last = n_frames - span
        if last < 0:
            raise ValueError(
                f"clip {clip_id} of {n_frames} frames is shorter than a crop span of {span}"
            )
        oracle = c.density in LABELLED_WEIGHTINGS
        tau = c.tau * self.fps[clip_id] if c.tau_unit == "seconds" else c.tau  # frames
        key = (last, "uniform" if oracle else c.density, tau)
        if key not in self._gap_density:
            self._gap_density[key] = gap_density(last, key[1], tau)
        if not oracle:
            return near_pair_starts(self._gap_density[key], rng)
        if clip_id not in self._states:
            if self.labels is None:
                raise ValueError(f"crop_policy near_pairs with {c.density} needs the run's labels")
            self._states[clip_id] = crop_states(self.labels[clip_id], last, c.num_frames, c.stride)
        same = c.density == "oracle"
        return matched_pair_starts(self._states[clip_id], self._gap_density[key], same, rng)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """(crops, centres, targets); with augment_on "device" (raw, params, centres,
        targets) instead: each crop's uint8 frames (rho, T, H, W) and its augmentation's
        parameters (rho, len(PARAMS)), drawn as the loader path draws them
        (twbyol.data.augment.augment_batch applies them to the batch)."""
        epoch, k = key
        c = self.crop
        rng = np.random.default_rng([self.seed, epoch, k])
        clip_id, n_frames = self.clips[k % len(self.clips)]
        span = (c.num_frames - 1) * c.stride + 1
        starts = self.starts(clip_id, n_frames, span, rng)
        arr = self.frames(clip_id)
        on_device = self.augment_on == "device"
        crops, params = [], []
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone: torch.manual_seed also seeds every accelerator's
            # (1.2 ms a call)
            torch.default_generator.manual_seed(int(rng.integers(2**62)))
            for s in starts:
                # a copy: at stride 1 the slice would be a view of the read-only memmap
                clip = torch.from_numpy(np.array(arr[s : s + span : c.stride]))  # (T, H, W)
                if on_device:
                    crops.append(clip)
                    params.append(self.draw(*clip.shape[-2:]))
                    continue
                video = tv_tensors.Video(clip.unsqueeze(1))  # (T, 1, H, W): one transform for all T
                crops.append(self.augment(video).as_subclass(torch.Tensor))
        x = torch.stack(crops) if on_device else to_model_input(torch.stack(crops))
        centres = starts + (span - 1) / 2.0
        if self.labels is None:
            targets = torch.zeros(len(starts), 0)
        else:
            targets = torch.from_numpy(
                self.labels[clip_id][:, np.floor(centres).astype(int)].T.copy()
            )
        if self.time_unit == "seconds":  # the unit of the run's tau: dt = |centre_i - centre_j|
            centres = centres / self.fps[clip_id]
        centres, targets = torch.from_numpy(centres).float(), targets.float()
        if on_device:
            return x, torch.stack(params), centres, targets
        return x, centres, targets

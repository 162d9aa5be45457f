"""The evaluation protocol of a dataset: which clips train the probes and which score them.

The public MABe22 evaluator (damaggu/MABe2022, round2/training) reads, per task, a split
file `{task}.json` = {UserTrain, SubmissionTrain, publicTest, privateTest} of clip names
and a tasks file {seeds, task_id_list, sequence_level_tasks}. Per task and probe seed it
fits on `train_test_split(SubmissionTrain, test_size=0.1, random_state=seed)[0]` (the other
10 % is thrown away) and scores publicTest (the public score) and privateTest + publicTest
(the private score, the leaderboard's). UserTrain clips are video only: they are in no frame
map and carry no labels.

`Protocol` is that description for one dataset, read from the release's files or, for a
dataset that has none (RatSI, own videos), derived here with the release's proportions, so
that one evaluation path serves every dataset. The read-dataset stage writes it as
`results/{exp}/labels/{dataset}.protocol.json`; the evaluate, supervised-pretraining and
submission stages read it. Its own module, so that the stages that only need the split do
not depend on the probe code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from twbyol import io
from twbyol.settings import EVALUATOR_SEED, EVALUATOR_TEST_SIZE

SPLITS = ("UserTrain", "SubmissionTrain", "publicTest", "privateTest")
SCORED = ("SubmissionTrain", "publicTest", "privateTest")  # splits of labelled clips
# The MABe22 mouse release: 1,307 SubmissionTrain, 261 publicTest, 262 privateTest clips of
# 1,830 (DESIGN, "MABe22"); derived splits keep these shares.
TEST_SHARE = (261 + 262) / 1830


def split_clips(
    clips: Sequence[str], test_size: float = EVALUATOR_TEST_SIZE, seed: int = EVALUATOR_SEED
) -> tuple[list[str], list[str]]:
    """The evaluator's clip split: `train_test_split(clips, test_size, random_state=seed)`.

    Returns (train_clips, held_out_clips) as lists, in the order sklearn returns them. The
    evaluator fits each probe on the first part of SubmissionTrain and never uses the second.
    """
    from sklearn.model_selection import train_test_split  # lazy: keeps `import twbyol.split` cheap

    train, test = train_test_split(list(clips), test_size=test_size, random_state=seed)
    return list(train), list(test)


@dataclass(frozen=True)
class Protocol:
    """How one dataset is scored (the JSON form is docs/artifacts.md's protocol file).

    tasks:            the tasks probed, in order (the tasks file's task_id_list, else every
                      task of the labels).
    sequence_level:   the tasks that are per-clip conditions (scored per frame, as the
                      evaluator does, plus a clip-pooled column).
    seeds:            probe seeds (one probe per task and seed; predictions aggregated).
    splits:           {split name: {SubmissionTrain, publicTest, privateTest: [clip ids]}}.
    task_split:       {task: split name}; tasks whose split files are identical share one.
    source:           where it came from: the split folder, or "derived (...)".
    frame_number_map: {clip: [start, end]} of the release's full frame axis, for the
                      leaderboard submission file (labelled clips whose video is missing are in
                      it, not in the labels), or None for a dataset without one.
    missing_videos:   labelled clips left out because their video is not on disk.
    trimmed:          clips whose video had trailing frames beyond the labels, cut off.
    video_only:       clips with video and no labels (UserTrain), pretraining only.
    """

    tasks: list[str]
    sequence_level: list[str]
    seeds: list[int]
    splits: dict[str, dict[str, list[str]]]
    task_split: dict[str, str]
    source: str
    frame_number_map: dict[str, list[int]] | None = None
    missing_videos: list[str] = field(default_factory=list)
    trimmed: list[str] = field(default_factory=list)
    video_only: list[str] = field(default_factory=list)

    def split_of(self, task: str) -> dict[str, list[str]]:
        return self.splits[self.task_split[task]]

    def clip_splits(self) -> dict[str, set[str]]:
        """{clip: the split names it appears in over every task's split} (pretraining
        selection), video-only clips as UserTrain."""
        out: dict[str, set[str]] = {c: {"UserTrain"} for c in self.video_only}
        for split in self.splits.values():
            for name, clips in split.items():
                for c in clips:
                    out.setdefault(c, set()).add(name)
        return out

    def train_clips(self, task: str, seed: int, test_size: float) -> list[str]:
        """The clips a probe of `task` with probe seed `seed` is fitted on (the evaluator's
        90 % of SubmissionTrain)."""
        sub = self.split_of(task)["SubmissionTrain"]
        return split_clips(sub, test_size, seed)[0] if test_size > 0 and len(sub) > 1 else list(sub)

    def validate(self, known: Sequence[str], where: str) -> None:
        """Every task has a split, every split names only known (labelled) clips, no clip is
        in two splits of one task and each split has SubmissionTrain and a test clip."""
        known_set = set(known)
        for t in self.tasks:
            if t not in self.task_split or self.task_split[t] not in self.splits:
                raise ValueError(f"{where}: no split for task {t!r}")
        for name, split in self.splits.items():
            seen: dict[str, str] = {}
            for key in SCORED:
                for c in split.get(key, []):
                    if c not in known_set:
                        raise ValueError(
                            f"{where}: split {name!r} {key} names clip {c!r}, which "
                            f"is not a labelled clip of the dataset"
                        )
                    if c in seen:
                        raise ValueError(
                            f"{where}: split {name!r} puts clip {c!r} in both {seen[c]} and {key}"
                        )
                    seen[c] = key
            if not split.get("SubmissionTrain"):
                raise ValueError(f"{where}: split {name!r} has no SubmissionTrain clip")
            if not split.get("publicTest") and not split.get("privateTest"):
                raise ValueError(f"{where}: split {name!r} has no publicTest or privateTest clip")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict, where: str = "protocol") -> Protocol:
        try:
            return cls(**obj)
        except TypeError as e:
            raise ValueError(f"{where}: not a protocol file ({e})") from None


def derived_protocol(
    clips: Sequence[str],
    tasks: Sequence[str],
    sequence_level: Sequence[str],
    seed: int,
    probe_seeds: Sequence[int] | None = None,
    test_share: float = TEST_SHARE,
) -> Protocol:
    """A protocol for a dataset without split files: one split for every task, the release's
    shares (71 % SubmissionTrain, 14 % publicTest, 14 % privateTest; at least one clip in
    SubmissionTrain and privateTest, and in publicTest from three clips on), drawn by `seed`;
    probe seeds `probe_seeds` (default: [seed])."""
    clips = list(clips)
    if len(clips) < 2:
        raise ValueError(f"a derived split needs at least 2 labelled clips, got {len(clips)}")
    n_test = min(len(clips) - 1, max(1 if len(clips) < 3 else 2, round(test_share * len(clips))))
    train, test = split_clips(clips, n_test / len(clips), seed)
    half = len(test) // 2  # privateTest the larger half, as the release's 262 to 261
    split = {
        "SubmissionTrain": sorted(train),
        "publicTest": sorted(test[:half]),
        "privateTest": sorted(test[half:]),
    }
    seeds = [int(s) for s in (probe_seeds or [seed])]
    return Protocol(
        list(tasks),
        list(sequence_level),
        seeds,
        {"all": split},
        {t: "all" for t in tasks},
        source=f"derived (no split files; seed {seed})",
    )


def write_protocol(path: str | os.PathLike, protocol: Protocol) -> None:
    io.write_json(path, protocol.to_json())


def read_protocol(path: str | os.PathLike) -> Protocol:
    path = Path(path)
    return Protocol.from_json(io.read_json(path), str(path))

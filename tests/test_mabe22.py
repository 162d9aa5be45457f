"""The MABe22 release as downloaded: both naming schemes, nesting, userTrain clips, a missing
video, the trailing frame, renamed files, and the errors a bad release must raise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from twbyol.data import artifacts, frames, index, mabe22
from twbyol.split import read_protocol
from twbyol.synthetic import generate as synth
from twbyol.synthetic.render import encode_video

N_CLIPS, N_USER, N_FRAMES = 14, 3, 40


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _labels_file(root: Path) -> Path:
    return next(p for name in mabe22.FILE_NAMES["labels"] for p in root.rglob(name))


@pytest.mark.parametrize("naming", ["caltech", "aicrowd"])
def test_release_reads_as_downloaded(release, naming):
    root = release[naming]
    log = []
    ds = mabe22.read(root, log=log.append)
    cs, p = ds.clips, ds.protocol
    summary = json.loads((root / "synth.json").read_text())
    labelled = summary["clips"]
    missing = [c for c in labelled if c not in cs.clip_ids]
    # the clip without video is left out, named in the log and counted
    assert len(missing) == 1 and p.missing_videos == missing
    assert any(missing[0] in line and "left out" in line for line in log)
    assert cs.clip_ids == [c for c in labelled if c != missing[0]]
    assert np.all(cs.n_frames == N_FRAMES) and cs.total_frames == (N_CLIPS - 1) * N_FRAMES
    # the release spells "Continious": read as Continuous
    assert cs.task_types == [
        "Continuous" if t in synth.MABE22_CONTINUOUS else "Discrete" for t in cs.tasks
    ]
    assert sorted(v.clip_id for v in ds.video_only) == sorted(summary["user_train_clips"])
    assert all(v.n_frames == N_FRAMES for v in ds.video_only)
    # every video was one frame longer than its labels: trimmed, in one log line
    assert sorted(p.trimmed) == sorted(cs.clip_ids + [v.clip_id for v in ds.video_only])
    assert sum("trimmed" in line for line in log) == 1
    # the protocol: the tasks file and the split files, missing clip taken out of them
    assert p.tasks == list(synth.MABE22_TASKS) and p.seeds == [42]
    assert set(p.sequence_level) == set(synth.MABE22_SEQUENCE)
    split = p.split_of("chases")
    assert sorted(sum(split.values(), [])) == sorted(cs.clip_ids)
    assert missing[0] not in split["publicTest"] and len(split["SubmissionTrain"]) >= 4
    # the release's frame map is kept whole, for the leaderboard submission
    assert list(p.frame_number_map) == labelled
    assert cs.keypoints[cs.clip_ids[0]].shape == (N_FRAMES, 3, 12, 2)


def test_read_dataset_cli_writes_index_labels_protocol_and_trims(release, tmp_path):
    root = release["caltech"]
    out = tmp_path / "out"
    args = [
        "--format",
        "mabe22",
        "--root",
        str(root),
        "--index-out",
        str(out / "index.tsv"),
        "--labels-out",
        str(out / "mice.npz"),
        "--protocol-out",
        str(out / "p.json"),
        "--n-shards",
        "2",
    ]
    assert index.main(args) == 0
    df = artifacts.read_index(out / "index.tsv")
    n_lab = N_CLIPS - 1
    assert df["labelled"].tolist() == [1] * n_lab + [0] * N_USER
    assert df["splits"].tolist()[n_lab:] == ["UserTrain"] * N_USER
    assert set(df["splits"][:n_lab]) <= {"SubmissionTrain", "publicTest", "privateTest"}
    labels = artifacts.load_labels(out / "mice.npz")
    assert labels.clips == df["clip_id"][:n_lab].tolist()
    assert labels.label_array.shape[1] == df["end"][n_lab - 1]
    assert read_protocol(out / "p.json").video_only == df["clip_id"][n_lab:].tolist()
    # extraction decodes the labelled length: the trailing frame is dropped
    done = out / "shard0.done"
    assert (
        frames.main(
            [
                "--index",
                str(out / "index.tsv"),
                "--shard",
                "0",
                "--size",
                "24",
                "--out-dir",
                str(out),
                "--done",
                str(done),
                "--root",
                str(root),
                "--fit",
                "letterbox",
            ]
        )
        == 0
    )
    # sources are relative to the dataset root: a dataset moved with its index keeps it
    assert (
        not any(Path(s).is_absolute() for s in df["source"])
        and str(root) not in (out / "index.tsv").read_text()
    )
    for c in json.loads(done.read_text())["clips"]:
        assert np.load(out / f"{c}.npy", mmap_mode="r").shape == (N_FRAMES, 24, 24)


def test_missing_videos_error_makes_it_fatal(release):
    with pytest.raises(FileNotFoundError, match="no video for 1 labelled clip"):
        mabe22.read(release["aicrowd"], missing_videos="error")


def test_renamed_files_and_video_folders(release, tmp_path):
    root = _copy(release["aicrowd"], tmp_path / "r")
    (root / "submission_labels.npy").rename(root / "my labels.npy")
    with pytest.raises(FileNotFoundError, match="no labels file"):
        mabe22.read(root)
    ds = mabe22.read(root, files={"labels": "my labels.npy"})
    assert len(ds.clips.clip_ids) == N_CLIPS - 1
    with pytest.raises(FileNotFoundError, match="nope.npy.*files.keypoints"):
        mabe22.read(root, files={"labels": "my labels.npy", "keypoints": "nope.npy"})
    # both archives of a clip unzipped: ambiguous until the folders are named
    shutil.copytree(root / "submission_videos", root / "submission_videos_resized_224")
    with pytest.raises(ValueError, match="2 videos.*`videos` list"):
        mabe22.read(root, files={"labels": "my labels.npy"})
    ds = mabe22.read(
        root,
        files={"labels": "my labels.npy"},
        videos=["submission_videos_resized_224", "userTrain_videos"],
    )
    assert all("resized_224" in str(p) for p in ds.clips.video_paths)
    assert len(ds.video_only) == N_USER


def _edit_labels(root: Path, edit) -> Path:
    path = _labels_file(root)
    lab = np.load(path, allow_pickle=True).item()
    edit(lab)
    np.save(path, np.array(lab, dtype=object), allow_pickle=True)
    return path


def test_bad_releases_fail_before_any_decoding_naming_the_file(release, tmp_path):
    base = release["caltech"]
    # wrong label shape
    root = _copy(base, tmp_path / "a")
    path = _edit_labels(root, lambda lab: lab.update(label_array=lab["label_array"][:, :-5]))
    with pytest.raises(ValueError, match=f"{path.name}.*shape"):
        mabe22.read(root)
    # an unknown task type
    root = _copy(base, tmp_path / "b")
    path = _edit_labels(root, lambda lab: lab["task_type"].__setitem__(0, "Binary"))
    with pytest.raises(ValueError, match=f"{path.name}.*Binary"):
        mabe22.read(root)
    # a split naming an unknown clip
    root = _copy(base, tmp_path / "c")
    split = next(root.rglob("chases.json"))
    info = json.loads(split.read_text())
    info["privateTest"].append("GHOSTCLIP")
    split.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="chases.json.*GHOSTCLIP"):
        mabe22.read(root)
    # a task list naming a task the labels do not have
    root = _copy(base, tmp_path / "d")
    tasks = next(root.rglob("mouse_round2_tasks.json"))
    tasks.write_text(json.dumps({"seeds": [42], "task_id_list": ["flying"]}))
    with pytest.raises(ValueError, match="mouse_round2_tasks.json.*flying"):
        mabe22.read(root)
    # an evaluator frame map that disagrees with the labels'
    root = _copy(base, tmp_path / "e")
    fmap = next(root.rglob("mouse_round2_frame_number_map.npy"))
    m = np.load(fmap, allow_pickle=True).item()
    m.pop(next(iter(m)))
    np.save(fmap, np.array(m, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="mouse_round2_frame_number_map.npy.*disagrees"):
        mabe22.read(root)


def _reencode(video: Path, n: int) -> None:
    encode_video(video, (np.full((32, 32), 80 + i, np.uint8) for i in range(n)), 30.0)


@pytest.mark.parametrize("n, match", [(N_FRAMES - 3, "truncated"), (N_FRAMES + 2, "wrong video")])
def test_video_length_other_than_labels_or_one_more_fails(release, tmp_path, n, match):
    root = _copy(release["aicrowd"], tmp_path / "r")
    video = sorted((root / "submission_videos").glob("*.avi"))[0]
    _reencode(video, n)
    with pytest.raises(ValueError, match=f"{video.name}.*{n} frames.*{N_FRAMES}.*{match}"):
        mabe22.read(root)


def test_exact_length_videos_read_untrimmed(release, tmp_path):
    root = _copy(release["aicrowd"], tmp_path / "r")
    video = sorted((root / "submission_videos").glob("*.avi"))[0]
    _reencode(video, N_FRAMES)
    ds = mabe22.read(root)
    assert (
        video.stem not in ds.protocol.trimmed and len(ds.protocol.trimmed) == N_CLIPS - 2 + N_USER
    )


def test_release_without_split_files_gets_a_derived_protocol(release, tmp_path):
    root = _copy(release["aicrowd"], tmp_path / "r")
    shutil.rmtree(root / "mouse_round2_splits")
    out = tmp_path / "out"
    assert (
        index.main(
            [
                "--format",
                "mabe22",
                "--root",
                str(root),
                "--index-out",
                str(out / "i.tsv"),
                "--labels-out",
                str(out / "l.npz"),
                "--protocol-out",
                str(out / "p.json"),
                "--n-shards",
                "1",
            ]
        )
        == 0
    )
    p = read_protocol(out / "p.json")
    assert p.source.startswith("derived") and p.tasks == list(synth.MABE22_TASKS)
    assert len(p.missing_videos) == 1 and p.frame_number_map is not None
    assert len(p.video_only) == N_USER  # userTrain clips from user_train.npy alone


def test_writer_is_deterministic_in_both_namings(tmp_path, write_release):
    a, b = tmp_path / "a", tmp_path / "b"
    write_release(a, "aicrowd", n_clips=4, n_user_train=1, drop_video=False, jobs=1)
    write_release(b, "aicrowd", n_clips=4, n_user_train=1, drop_video=False, jobs=1)
    for name in (
        "submission_labels.npy",
        "submission_keypoints.npy",
        "user_train.npy",
        "frame_number_map.npy",
        "mouse_round2_tasks.json",
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = tmp_path / "c"
    write_release(c, "caltech", n_clips=4, n_user_train=1, drop_video=False, jobs=1)
    assert (c / "mouse_submission_labels.npy").is_file()
    assert (c / "metadata" / "mouse_round2_splits").is_dir()
    # the same clips and labels whatever the names
    la = np.load(a / "submission_labels.npy", allow_pickle=True).item()
    lc = np.load(c / "mouse_submission_labels.npy", allow_pickle=True).item()
    np.testing.assert_array_equal(la["label_array"], lc["label_array"])
    assert "Continious" in la["task_type"]

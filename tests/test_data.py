"""Synthetic generator, MABe22/RatSI readers, read-dataset index and frame extraction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from twbyol.data import artifacts, frames, index, mabe22, ratsi
from twbyol.data.clips import CENTRE, NOSE, TAIL_BASE
from twbyol.data.frames import extract_frames
from twbyol.synthetic import dataset as motion_dataset
from twbyol.synthetic import generate as synth

N_CLIPS, N_FRAMES, SIZE, SEED = 3, 40, 64, 7
LABELS, FRAME_MAP = "submission_labels.npy", "frame_number_map.npy"  # the AIcrowd names


@pytest.fixture(scope="module")
def mice(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mice")
    synth.generate(root, "mabe22", synth.SynthConfig(N_CLIPS, N_FRAMES, SIZE, SEED))
    return root


@pytest.fixture(scope="module")
def rats(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rats")
    synth.generate(root, "ratsi", synth.SynthConfig(2, N_FRAMES, SIZE, SEED))
    return root


def _decode(path: Path, size: int) -> np.ndarray:
    """Reference decode: bare PyAV, same conversion as extract_frames."""
    with av.open(str(path)) as c:
        return np.stack(
            [
                f.to_ndarray(
                    format="gray", width=size, height=size, interpolation=frames.INTERPOLATION
                )
                for f in c.decode(video=0)
            ]
        )


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------- generator + readers
def test_mabe22_roundtrip_matches_generator(mice, tmp_path):
    cs = mabe22.read(mice).clips
    assert len(cs.clip_ids) == N_CLIPS and cs.total_frames == N_CLIPS * N_FRAMES
    assert cs.tasks == list(synth.MABE22_TASKS)
    assert np.allclose(cs.fps, 30.0) and np.all(cs.n_frames == N_FRAMES)
    assert cs.sequence_level.tolist() == [t in synth.MABE22_SEQUENCE for t in cs.tasks]
    # Regenerating clip 1 from its seed gives exactly what the reader returns.
    clip = synth.make_clip(
        "mabe22",
        1,
        np.random.SeedSequence(SEED).spawn(N_CLIPS)[1],
        tmp_path,
        N_FRAMES,
        SIZE,
        30.0,
        extra_frames=1,  # the release's trailing video frame
    )
    assert clip.clip_id == cs.clip_ids[1]
    np.testing.assert_array_equal(cs.keypoints[clip.clip_id], clip.keypoints)
    assert cs.keypoints[clip.clip_id].shape == (N_FRAMES, 3, 12, 2)
    np.testing.assert_array_equal(cs.labels_of(clip.clip_id), clip.labels)
    np.testing.assert_array_equal(
        _decode(cs.video_paths[1], SIZE),
        _decode(mabe22.video_path(tmp_path, clip.clip_id, synth.SynthConfig.naming), SIZE),
    )


def test_ratsi_roundtrip_matches_generator(rats, tmp_path):
    cs = ratsi.read(rats).clips
    assert cs.clip_ids == ["Observation01", "Observation02"]
    assert cs.tasks == list(ratsi.BEHAVIOURS) and not cs.sequence_level.any()
    clip = synth.make_clip(
        "ratsi", 0, np.random.SeedSequence(SEED).spawn(2)[0], tmp_path, N_FRAMES, SIZE, 30.0
    )
    np.testing.assert_array_equal(cs.labels_of("Observation01"), clip.labels)
    # One behaviour per frame, or NaN everywhere on Uncertain frames.
    lab = cs.label_array
    labelled = ~np.isnan(lab).any(axis=0)
    assert np.all(np.isnan(lab[:, ~labelled])) and np.all(lab[:, labelled].sum(axis=0) == 1)
    tracked = clip.keypoints[:, :, [NOSE, CENTRE, TAIL_BASE]]
    np.testing.assert_allclose(cs.keypoints["Observation01"], tracked, atol=0.006)


def test_generator_is_deterministic(mice, tmp_path):
    again = tmp_path / "again"
    synth.generate(again, "mabe22", synth.SynthConfig(N_CLIPS, N_FRAMES, SIZE, SEED))
    for name in (LABELS, "submission_keypoints.npy", FRAME_MAP):
        assert (again / name).read_bytes() == (mice / name).read_bytes(), name
    for a, b in zip(mabe22.read(again).clips.video_paths, mabe22.read(mice).clips.video_paths):
        np.testing.assert_array_equal(_decode(a, SIZE), _decode(b, SIZE))
    other = tmp_path / "other"
    synth.generate(other, "mabe22", synth.SynthConfig(N_CLIPS, N_FRAMES, SIZE, SEED + 1))
    assert (other / LABELS).read_bytes() != (mice / LABELS).read_bytes()


def test_every_action_kind_has_a_control_and_bad_kinds_fail():
    from twbyol.synthetic import social as sim

    assert set(sim._CONTROL) == set(sim.SOLO_KINDS + sim.SOCIAL_KINDS)
    with pytest.raises(ValueError, match="'leap'.*unknown kind 'jump'"):
        sim.Action("leap", "jump", 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="'sniff'.*unknown head motion 'nod'"):
        sim.Action("sniff", "sniff", 1.0, 1.0, 0.5, head="nod")


def test_simulated_labels_are_the_generated_ones(mice, rats):
    cs = mabe22.read(mice).clips
    lab = synth.simulated_labels("mabe22", synth.SynthConfig(N_CLIPS, N_FRAMES, SIZE, SEED))
    np.testing.assert_array_equal(np.concatenate(list(lab), axis=1), cs.label_array)
    rs = ratsi.read(rats).clips
    np.testing.assert_array_equal(
        np.concatenate(
            list(synth.simulated_labels("ratsi", synth.SynthConfig(2, N_FRAMES, SIZE, SEED))),
            axis=1,
        ),
        rs.label_array,
    )


def test_every_per_frame_task_has_positives_in_every_experiment():
    """The benchmark's per-frame tasks can be scored in each experiment of config/config.yaml:
    each has positive frames (the evaluator scores a task without any as F1 0 for every run)."""
    import yaml

    config = yaml.safe_load((Path(__file__).parents[1] / "config/config.yaml").read_text())
    checked = 0
    for name, e in config["experiments"].items():
        for ds, d in e["datasets"].items():
            s = d.get("synthetic")
            if not s:
                continue
            if s.get("generator") == "motion":
                lab = motion_dataset.simulated_labels(
                    s["n_clips"], s["n_frames"], s["seed"], n_user_train=s.get("n_user_train", 0)
                )
                tasks = motion_dataset.TASKS
            else:
                lab = synth.simulated_labels(d["format"], synth.SynthConfig.from_dict(s))
                tasks = synth.MABE22_TASKS if d["format"] == "mabe22" else ratsi.BEHAVIOURS
            for k, t in enumerate(tasks):
                if t in synth.MABE22_SEQUENCE:
                    continue
                assert np.nansum(lab[:, k]) > 0, f"{name}.{ds}: task {t} has no positive frame"
                checked += 1
    assert checked >= 2 * (5 + 8)  # smoke and synthetic, mice (motion) and rats


def test_labels_agree_with_keypoints(mice):
    """Geometric tasks are what the keypoints show: spot-check oral-oral contact."""
    cs = mabe22.read(mice).clips
    t = cs.tasks.index("oral_oral_contact")
    for c in cs.clip_ids:
        kp = cs.keypoints[c]  # (T, 3, 12, 2)
        noses = kp[:, :, NOSE]
        d = np.linalg.norm(noses[:, :, None] - noses[:, None], axis=-1)  # (T, 3, 3)
        d[:, np.arange(3), np.arange(3)] = np.inf
        body = np.linalg.norm(kp[:, :, NOSE] - kp[:, :, TAIL_BASE], axis=-1).mean()
        # 0.15 mean body lengths (nose-to-tail-base) of the pair; body lengths vary a little
        far = d.min(axis=(1, 2)) > 0.2 * body
        assert not cs.labels_of(c)[t][far].any()


# -------------------------------------------------------------------------- validation
def test_truncated_video_fails_naming_the_file(mice, tmp_path):
    root = _copy(mice, tmp_path / "d")
    video = mabe22.read(root).clips.video_paths[0]
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=video.name):
        mabe22.read(root)
    out = tmp_path / "f.npy"
    with pytest.raises(ValueError, match=video.name):
        extract_frames(video, out, 32, expected=N_FRAMES)
    assert not out.exists()


def test_corrupt_video_fails_naming_the_file(mice, tmp_path):
    root = _copy(mice, tmp_path / "d")
    video = mabe22.read(root).clips.video_paths[-1]
    video.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(ValueError, match=video.name):
        mabe22.read(root)
    with pytest.raises(ValueError, match=video.name):
        extract_frames(video, tmp_path / "f.npy", 32)


def test_video_frame_count_must_match_labels(mice, tmp_path):
    root = _copy(mice, tmp_path / "d")
    video = mabe22.read(root).clips.video_paths[0]
    # Re-encode the clip 5 frames short: a valid file that disagrees with its labels.
    frames_ = _decode(video, SIZE)[: N_FRAMES - 5]
    from twbyol.synthetic.render import encode_video

    encode_video(video, iter(frames_), 30.0)
    with pytest.raises(ValueError, match=f"{video.name}.*{N_FRAMES - 5} frames"):
        mabe22.read(root)


def test_wrong_label_shape_fails_naming_the_file(mice, tmp_path):
    root = _copy(mice, tmp_path / "d")
    path = root / LABELS
    lab = np.load(path, allow_pickle=True).item()
    lab["label_array"] = lab["label_array"][:, :-5]
    np.save(path, np.array(lab, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=f"{LABELS}.*shape"):
        mabe22.read(root)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda lab: lab.update(label_array=lab["label_array"].astype(object)), "numeric"),
        (lambda lab: lab["label_array"].__setitem__((5, 3), 0.5), "non-binary"),
        (
            lambda lab: lab["frame_number_map"].__setitem__("NOSUCHCLIP", (0, 40)),
            "frame_number_map",
        ),
    ],
)
def test_bad_label_values_fail(mice, tmp_path, corrupt, match):
    root = _copy(mice, tmp_path / "d")
    path = root / LABELS
    lab = np.load(path, allow_pickle=True).item()
    corrupt(lab)
    np.save(path, np.array(lab, dtype=object), allow_pickle=True)
    (root / FRAME_MAP).unlink()  # test the label file on its own
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        mabe22.read(root)


def test_missing_files_and_unknown_clips(mice, rats, tmp_path):
    root = _copy(mice, tmp_path / "m")
    cs = mabe22.read(root).clips
    split = root / "mouse_round2_splits" / "chases.json"
    split.write_text(json.dumps({"publicTest": ["GHOST"]}))
    with pytest.raises(ValueError, match="chases.json.*GHOST"):
        mabe22.read(root)
    split.unlink()
    cs.video_paths[1].unlink()
    with pytest.raises(FileNotFoundError, match=cs.clip_ids[1]):
        mabe22.read(root, missing_videos="error")
    (root / LABELS).unlink()
    with pytest.raises(FileNotFoundError, match=LABELS):
        mabe22.read(root)

    rroot = _copy(rats, tmp_path / "r")
    ann = rroot / ratsi.ANNOTATIONS / "Observation02.csv"
    ann.write_text(ann.read_text().replace("Solitary", "Dancing", 1))
    with pytest.raises(ValueError, match="Observation02.csv.*Dancing"):
        ratsi.read(rroot)


# ------------------------------------------------------------------- index + extraction
def test_shards_cover_every_clip_once():
    rng = np.random.default_rng(0)
    for n_clips, n_shards in [(1, 1), (5, 2), (12, 2), (7, 10), (300, 16)]:
        n_frames = rng.integers(10, 2000, n_clips)
        shard = index.assign_shards(n_frames, n_shards)
        assert shard.shape == (n_clips,) and shard.min() >= 0 and shard.max() < n_shards
        load = np.bincount(shard, weights=n_frames, minlength=n_shards)
        assert load.sum() == n_frames.sum()
        if n_clips >= n_shards:
            assert load.max() - load.min() <= n_frames.max()
        np.testing.assert_array_equal(shard, index.assign_shards(n_frames, n_shards))
    assert np.bincount(index.assign_shards(np.full(12, 300), 2)).tolist() == [6, 6]


def test_read_dataset_and_extract_frames_cli(mice, tmp_path):
    idx, lab, out = (
        tmp_path / "frames/mice/index.tsv",
        tmp_path / "labels/mice.npz",
        tmp_path / "frames/mice",
    )
    assert (
        index.main(
            [
                "--format",
                "mabe22",
                "--root",
                str(mice),
                "--index-out",
                str(idx),
                "--labels-out",
                str(lab),
                "--protocol-out",
                str(tmp_path / "labels/mice.protocol.json"),
                "--n-shards",
                "2",
            ]
        )
        == 0
    )
    df = artifacts.read_index(idx)
    assert list(df.columns) == list(artifacts.INDEX_COLUMNS) and sorted(df["shard"]) == [0, 0, 1]
    labels = artifacts.load_labels(lab)
    cs = mabe22.read(mice).clips
    assert labels.clips == df["clip_id"].tolist() == cs.clip_ids
    np.testing.assert_array_equal(labels.label_array, cs.label_array)
    assert labels.tasks == cs.tasks and labels.sequence_level.dtype == bool
    for k in (0, 1):
        done = tmp_path / f"shard{k}.done"
        assert (
            frames.main(
                [
                    "--index",
                    str(idx),
                    "--shard",
                    str(k),
                    "--size",
                    "32",
                    "--out-dir",
                    str(out),
                    "--done",
                    str(done),
                    "--root",
                    str(mice),
                    "--fit",
                    "letterbox",
                ]
            )
            == 0
        )
        assert set(json.loads(done.read_text())["clips"]) == set(df.clip_id[df.shard == k])
    for row in df.itertuples():
        arr = np.load(out / f"{row.clip_id}.npy", mmap_mode="r")
        assert arr.dtype == np.uint8 and arr.shape == (row.n_frames, 32, 32)
    # An index that disagrees with the video is an error naming the video.
    df.loc[0, "n_frames"] += 2  # the video holds its labels' frames and one more
    df.loc[:, "end"] = df["n_frames"].cumsum()
    df.loc[:, "start"] = df["end"] - df["n_frames"]
    df.to_csv(idx, sep="\t", index=False)
    with pytest.raises(ValueError, match=Path(df.source[0]).name):
        frames.main(
            [
                "--index",
                str(idx),
                "--shard",
                str(df.shard[0]),
                "--size",
                "32",
                "--out-dir",
                str(out),
                "--done",
                str(tmp_path / "x.done"),
                "--root",
                str(mice),
                "--fit",
                "letterbox",
            ]
        )
    assert not (tmp_path / "x.done").exists()


def test_read_index_rejects_bad_tables(tmp_path):
    good = (
        "clip_id\tn_frames\tfps\tsource\tshard\tstart\tend\tlabelled\tsplits\n"
        "0012\t10\t30.0\t/v.mp4\t0\t0\t10\t1\t\n"
    )
    p = tmp_path / "index.tsv"
    p.write_text(good)
    assert artifacts.read_index(p)["clip_id"].tolist() == ["0012"]
    p.write_text(good.replace("\tshard", "\tsharp"))
    with pytest.raises(ValueError, match="index.tsv.*shard"):
        artifacts.read_index(p)
    p.write_text(good.replace("\t0\t10\t", "\t0\t11\t"))
    with pytest.raises(ValueError, match="index.tsv.*end to end"):
        artifacts.read_index(p)


def test_extract_frames_equals_direct_decode(mice, tmp_path):
    video = mabe22.read(mice).clips.video_paths[0]
    for size in (32, SIZE):
        out = tmp_path / f"f{size}.npy"
        assert extract_frames(video, out, size) == N_FRAMES + 1  # with the trailing frame
        np.testing.assert_array_equal(np.load(out, mmap_mode="r"), _decode(video, size))


def test_extraction_failure_leaves_no_file(mice, tmp_path, monkeypatch):
    video = mabe22.read(mice).clips.video_paths[0]
    calls = {"n": 0}
    real = frames.decode_gray

    def failing(frame, size, fit):
        calls["n"] += 1
        if calls["n"] == 10:
            raise RuntimeError("killed midway")
        return real(frame, size, fit)

    monkeypatch.setattr(frames, "decode_gray", failing)
    out = tmp_path / "clip.npy"
    with pytest.raises(RuntimeError, match="midway"):
        extract_frames(video, out, 32)
    assert calls["n"] == 10 and list(tmp_path.iterdir()) == []

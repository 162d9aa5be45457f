"""Own videos (format `videos`): discovery, per-frame label CSVs, aspect handling."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from twbyol.data import videos
from twbyol.data.frames import extract_frames, fitted_size
from twbyol.synthetic.render import encode_video


def _video(path: Path, n: int = 12, w: int = 64, h: int = 48, fps: float = 30.0) -> Path:
    """A gray H.264 video of `n` frames of `w` x `h` whose frame i has brightness 10 * i."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(path, (np.full((h, w), 10 * i, np.uint8) for i in range(n)), fps)
    return path


def _labels(path: Path, rows: list[list], header=("frame", "groom", "rear")) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _rows(n: int, groom=None, rear=None) -> list[list]:
    groom = groom if groom is not None else [i % 2 for i in range(n)]
    rear = rear if rear is not None else [0] * n
    return [[i, groom[i], rear[i]] for i in range(n)]


def test_every_video_is_a_clip_with_a_file_safe_id(tmp_path):
    _video(tmp_path / "day 1" / "cage 3.mp4")
    _video(tmp_path / "day2" / "mouse_B.avi", n=8, fps=15)
    _labels(_video(tmp_path / "top.MOV", n=5).with_suffix(".csv"), _rows(5))
    (tmp_path / "notes.txt").write_text("not a video")
    ds = videos.read(tmp_path, log=lambda s: None)
    got = {v.clip_id: (v.n_frames, v.fps) for v in ds.video_only}
    assert got == {"day 1__cage 3": (12, 30.0), "day2__mouse_B": (8, 15.0)}
    assert ds.clips.clip_ids == ["top"] and list(ds.clips.fps) == [30.0]


def test_a_folder_without_any_labels_is_a_pretraining_dataset(tmp_path):
    """No label anywhere: every video pretrains; read-dataset writes an index of video-only
    clips, no labelled clip and a protocol with nothing to score, and refuses when the
    experiment evaluates the dataset (--require-labels), naming the folder."""
    import json

    from twbyol.data import index
    from twbyol.data.artifacts import read_index

    _video(tmp_path / "v" / "a.mp4")
    _video(tmp_path / "v" / "day 2" / "b.avi", n=8, fps=15)
    ds = videos.read(tmp_path / "v", log=lambda s: None)
    assert ds.clips.clip_ids == [] and [v.clip_id for v in ds.video_only] == ["a", "day 2__b"]
    out = {k: tmp_path / f"out.{k}" for k in ("tsv", "npz", "json")}
    args = ["--format", "videos", "--root", str(tmp_path / "v"), "--n-shards", "1"]
    args += ["--index-out", str(out["tsv"]), "--labels-out", str(out["npz"])]
    args += ["--protocol-out", str(out["json"])]
    with pytest.raises(ValueError, match=rf"{tmp_path / 'v'}: none of its 2 videos has labels"):
        index.main([*args, "--require-labels"])
    assert not any(p.exists() for p in out.values())
    assert index.main(args) == 0
    table = read_index(out["tsv"])
    assert list(table["clip_id"]) == ["a", "day 2__b"] and not table["labelled"].any()
    assert list(table["fps"]) == [30.0, 15.0]
    protocol = json.loads(out["json"].read_text())
    assert protocol["tasks"] == [] and protocol["video_only"] == ["a", "day 2__b"]
    with pytest.raises(ValueError, match="out.npz: starts/ends must give one"):
        from twbyol.data.artifacts import load_labels

        load_labels(out["npz"])


def _read_dataset_args(root: Path, out: Path, clips: Path | None = None) -> list[str]:
    args = ["--format", "videos", "--root", str(root)]
    args += ["--index-out", str(out / "index.tsv"), "--labels-out", str(out / "l.npz")]
    args += ["--protocol-out", str(out / "p.json")]
    return args + (["--clips", str(clips)] if clips else ["--n-shards", "2"])


def test_the_clip_list_reads_the_videos_alone_and_the_index_takes_its_shards(tmp_path):
    """--clips-out lists every video by path with its frames, rate and shard without opening
    a label file (a broken one changes nothing there; the index step then fails naming it);
    the index lists the labelled clips first with each clip's shard from the clip list."""
    from twbyol.data import index
    from twbyol.data.artifacts import read_clips, read_index

    root, out = tmp_path / "v", tmp_path / "out"
    _video(root / "a.mp4", n=24)
    _labels(_video(root / "b.mp4", n=18).with_suffix(".csv"), _rows(18))
    label = _labels(_video(root / "c.mp4", n=10).with_suffix(".csv"), _rows(10))
    _video(root / "sub" / "d.avi", n=8, fps=15)
    clips_tsv = out / "clips.tsv"
    base = ["--format", "videos", "--root", str(root), "--clips-out", str(clips_tsv)]
    assert index.main([*base, "--n-shards", "2"]) == 0
    clips = read_clips(clips_tsv)
    assert list(clips["clip_id"]) == ["a", "b", "c", "sub__d"]
    assert list(clips["n_frames"]) == [24, 18, 10, 8] and list(clips["fps"]) == [30, 30, 30, 15]
    assert list(clips["shard"]) == [0, 1, 1, 0]  # longest first, each to the lightest shard
    assert list(clips["source"]) == ["a.mp4", "b.mp4", "c.mp4", "sub/d.avi"]
    first = clips_tsv.read_text()
    # the labels are not read: a broken label file leaves the clip list as it was ...
    label.write_text("frame,groom\n0,7\n")
    assert index.main([*base, "--n-shards", "2"]) == 0 and clips_tsv.read_text() == first
    # ... and the index step fails on it, naming the file, writing nothing
    with pytest.raises(ValueError, match=r"c.csv: 1 label rows but the video has 10 frames"):
        index.main(_read_dataset_args(root, out, clips_tsv))
    assert not (out / "index.tsv").exists()
    _labels(label, _rows(10))
    assert index.main(_read_dataset_args(root, out, clips_tsv)) == 0
    table = read_index(out / "index.tsv")
    assert list(table["clip_id"]) == ["b", "c", "a", "sub__d"]  # the labelled clips first
    assert list(table["labelled"]) == [1, 1, 0, 0]
    shard = dict(zip(clips["clip_id"], clips["shard"]))
    assert list(table["shard"]) == [shard[c] for c in table["clip_id"]]
    assert read_clips(out / "index.tsv").equals(table[list(clips.columns)])  # reads as clips


def test_a_clip_list_that_no_longer_matches_the_videos_fails_naming_it(tmp_path):
    from twbyol.data import index

    root, out = tmp_path / "v", tmp_path / "out"
    for name in ("a", "c"):
        _labels(_video(root / f"{name}.mp4", n=10).with_suffix(".csv"), _rows(10))
    clips_tsv = out / "clips.tsv"
    scan = ["--format", "videos", "--root", str(root), "--clips-out", str(clips_tsv)]
    assert index.main([*scan, "--n-shards", "1"]) == 0
    _video(root / "b.mp4", n=6)  # a video added after the clip list was written
    with pytest.raises(
        ValueError, match=r"clips.tsv: the clip list does not match .* read but not listed: \['b'\]"
    ):
        index.main(_read_dataset_args(root, out, clips_tsv))
    assert index.main([*scan, "--n-shards", "1"]) == 0
    _video(root / "b.mp4", n=7)  # re-encoded with another length
    with pytest.raises(ValueError, match=r"clips.tsv: clip 'b' has n_frames 6 there but 7"):
        index.main(_read_dataset_args(root, out, clips_tsv))
    assert not (out / "index.tsv").exists()


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--clips-out", "c.tsv", "--index-out", "i.tsv", "--n-shards", "1"], "not --index-out"),
        (["--clips-out", "c.tsv"], "give it --n-shards"),
        (["--index-out", "i.tsv", "--n-shards", "1"], "give --labels-out, --protocol-out"),
        (
            ["--index-out", "i", "--labels-out", "l", "--protocol-out", "p"],
            "--clips .* or --n-shards",
        ),
    ],
)
def test_read_dataset_refuses_a_mix_of_its_two_steps(tmp_path, capsys, extra, match):
    from twbyol.data import index

    _video(tmp_path / "a.mp4", n=4)
    with pytest.raises(SystemExit):
        index.main(["--format", "videos", "--root", str(tmp_path), *extra])
    assert re.search(match, capsys.readouterr().err)
    assert not any((tmp_path / n).exists() for n in ("c.tsv", "i.tsv", "i"))


def test_read_clips_names_the_file_and_its_missing_column(tmp_path):
    from twbyol.data.artifacts import read_clips

    bad = tmp_path / "clips.tsv"
    bad.write_text("clip_id\tn_frames\tfps\tsource\n0012\t5\t30\ta.mp4\n")
    with pytest.raises(ValueError, match=r"clips.tsv: missing column\(s\) \['shard'\]"):
        read_clips(bad)
    bad.write_text("clip_id\tn_frames\tfps\tsource\tshard\n0012\t5\t30\ta.mp4\t0\n")
    assert read_clips(bad)["clip_id"].tolist() == ["0012"]  # ids stay strings
    with pytest.raises(FileNotFoundError, match="nope.tsv: clip list not found"):
        read_clips(tmp_path / "nope.tsv")


def test_the_headline_dataset_is_an_evaluated_one():
    from twbyol.tables import headline_dataset

    assert headline_dataset({"pretrain_dataset": "m", "eval_datasets": ["m", "r"]}) == "m"
    assert headline_dataset({"pretrain_dataset": "raw", "eval_datasets": ["lab", "r"]}) == "lab"


def test_a_label_file_beside_no_video_fails_and_pose_tables_are_left_alone(tmp_path):
    _labels(_video(tmp_path / "a.mp4", n=4).with_suffix(".csv"), _rows(4))
    # DeepLabCut's pose table beside the video: three header rows, coordinates
    dlc = "scorer,DLC,DLC,DLC\nbodyparts,nose,nose,nose\ncoords,x,y,likelihood\n"
    (tmp_path / "aDLC_resnet50_shuffle1_1000.csv").write_text(dlc + "0,12.5,40.1,0.99\n")
    (tmp_path / "features.csv").write_text("frame,speed\n0,3.25\n1,0.5\n")
    assert videos.read(tmp_path, log=lambda s: None).clips.clip_ids == ["a"]
    (tmp_path / "sub").mkdir()
    _labels(tmp_path / "sub" / "cage_7.csv", _rows(4))
    with pytest.raises(
        ValueError, match=r"sub/cage_7.csv: a per-frame label file that names no video \(no cage_7 "
    ):
        videos.read(tmp_path, log=lambda s: None)
    (tmp_path / "sub" / "cage_7.csv").unlink()
    (tmp_path / "b_labels.csv").write_text("anything")
    with pytest.raises(
        ValueError, match=r"b_labels.csv: a per-frame label file that names no video \(no b "
    ):
        videos.read(tmp_path, log=lambda s: None)


def test_per_frame_csv_labels_map_onto_frames(tmp_path):
    n = 12
    v1 = _video(tmp_path / "a.mp4", n=n)
    _video(tmp_path / "b.mp4", n=n)  # unlabelled: pretraining only
    groom = [1, 1, 0, 0, -1, "", 1, 0, 0, 0, 1, 1]
    _labels(v1.with_suffix(".csv"), _rows(n, groom=groom))
    ds = videos.read(tmp_path, log=lambda s: None)
    assert ds.clips.clip_ids == ["a"] and [v.clip_id for v in ds.video_only] == ["b"]
    assert ds.clips.tasks == ["groom", "rear"] and ds.clips.task_types == ["Discrete"] * 2
    want = np.array([1, 1, 0, 0, np.nan, np.nan, 1, 0, 0, 0, 1, 1], np.float32)
    np.testing.assert_array_equal(ds.clips.label_array[0], want)
    assert np.all(ds.clips.label_array[1] == 0)


def test_deepethogram_labels_name_and_background_column(tmp_path):
    n = 6
    v = _video(tmp_path / "m1.mp4", n=n)
    _labels(
        tmp_path / "m1_labels.csv",
        [[i, 1 - (i % 2), i % 2, 0] for i in range(n)],
        header=("", "background", "groom", "rear"),
    )
    ds = videos.read(tmp_path, log=lambda s: None)
    assert ds.clips.clip_ids == ["m1"] and ds.clips.video_paths == [v.resolve()]
    assert ds.clips.tasks == ["groom", "rear"]  # background dropped


def test_behaviours_missing_from_one_file_are_unlabelled_there(tmp_path):
    n = 4
    _labels(_video(tmp_path / "a.mp4", n=n).with_suffix(".csv"), _rows(n))
    _labels(
        _video(tmp_path / "b.mp4", n=n).with_suffix(".csv"),
        [[i, 1] for i in range(n)],
        header=("frame", "sniff"),
    )
    ds = videos.read(tmp_path, log=lambda s: None)
    assert ds.clips.tasks == ["groom", "rear", "sniff"]
    a, b = ds.clips.labels_of("a"), ds.clips.labels_of("b")
    assert np.isnan(a[2]).all() and np.isnan(b[:2]).all() and (b[2] == 1).all()


@pytest.mark.parametrize(
    "rows, header, match",
    [
        (_rows(11), ("frame", "groom", "rear"), r"a\.csv: 11 label rows but the video has 12"),
        (
            [[i if i != 5 else 7, 0, 0] for i in range(12)],
            ("frame", "groom", "rear"),
            r"a\.csv: row 7, column 'frame': frame '7', expected 5",
        ),
        (
            [[i, 2 if i == 3 else 0, 0] for i in range(12)],
            ("frame", "groom", "rear"),
            r"a\.csv: row 5, column 'groom': '2' is not 1, 0, -1 or empty",
        ),
        (_rows(12), ("frame", "groom", "groom"), r"a\.csv: behaviour column\(s\) \['groom'\]"),
        ([[i] for i in range(12)], ("frame",), r"a\.csv: needs a frame column"),
    ],
)
def test_bad_label_csv_fails_naming_file_and_row(tmp_path, rows, header, match):
    _labels(_video(tmp_path / "a.mp4").with_suffix(".csv"), rows, header=header)
    with pytest.raises(ValueError, match=match):
        videos.read(tmp_path, log=lambda s: None)


def test_named_behaviours_select_columns_and_must_all_be_there(tmp_path):
    """With the dataset's `behaviours`, a table's other columns are ignored (SimBA's pose
    features); a listed behaviour without a column is an error naming the file."""
    n = 12
    v = _video(tmp_path / "a.mp4", n=n)
    rows = [[i, 0.5 * i, i % 2, 0] for i in range(n)]  # nose_x, a feature, not 0/1
    _labels(v.with_suffix(".csv"), rows, header=("", "nose_x", "Attack", "Sniffing"))
    ds = videos.read(tmp_path, behaviours=["Sniffing", "Attack"], log=lambda s: None)
    assert ds.clips.tasks == ["Sniffing", "Attack"]
    assert ds.clips.label_array[1].tolist() == [i % 2 for i in range(n)]
    with pytest.raises(
        ValueError,
        match=r"a\.csv: row 3, column 'nose_x': '0\.5' is not .*"
        r"needs the dataset's `behaviours`",
    ):
        videos.read(tmp_path, log=lambda s: None)
    with pytest.raises(ValueError, match=r"a\.csv: no column for behaviour\(s\) \['Rear'\]"):
        videos.read(tmp_path, behaviours=["Attack", "Rear"], log=lambda s: None)


def test_two_label_files_for_one_video_fail(tmp_path):
    v = _video(tmp_path / "a.mp4")
    _labels(v.with_suffix(".csv"), _rows(12))
    _labels(tmp_path / "a_labels.csv", _rows(12))
    with pytest.raises(ValueError, match=r"two per-frame label files"):
        videos.read(tmp_path, log=lambda s: None)


def test_colliding_clip_ids_fail(tmp_path):
    _video(tmp_path / "x" / "y.mp4")
    _video(tmp_path / "x__y.mp4")
    with pytest.raises(ValueError, match=r"give the same clip id 'x__y'"):
        videos.read(tmp_path, log=lambda s: None)


def test_no_videos_fails_naming_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        videos.read(tmp_path, log=lambda s: None)


@pytest.mark.parametrize(
    "w, h, fit, want",
    [
        (640, 480, "letterbox", (128, 96)),
        (640, 480, "crop", (171, 128)),
        (480, 640, "letterbox", (96, 128)),
        (1350, 360, "letterbox", (128, 34)),
        (1350, 360, "crop", (480, 128)),
        (512, 512, "letterbox", (128, 128)),
        (512, 512, "crop", (128, 128)),
    ],
)
def test_fitted_size_keeps_the_aspect(w, h, fit, want):
    assert fitted_size(w, h, 128, fit) == want


@pytest.mark.parametrize("fit", ["letterbox", "crop"])
def test_a_square_object_stays_square_in_a_4_3_video(tmp_path, fit):
    w, h, side = 640, 480, 160
    frame = np.zeros((h, w), np.uint8)
    y, x = (h - side) // 2, (w - side) // 2
    frame[y : y + side, x : x + side] = 255
    src = tmp_path / "box.mp4"
    encode_video(src, [frame] * 3, 30)
    out = tmp_path / "box.npy"
    extract_frames(src, out, 64, fit=fit)
    img = np.load(out)[1]
    ys, xs = np.nonzero(img > 128)
    bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert abs(bh - bw) <= 1, (bh, bw)
    scale = 64 / (w if fit == "letterbox" else h)
    assert abs(bw - side * scale) <= 2
    if fit == "letterbox":  # the bars: the rows above and below the frame are black
        assert img[:4].max() < 16 and img[-4:].max() < 16


def test_a_square_video_is_resized_as_before_by_either_fit(tmp_path):
    src = _video(tmp_path / "sq.mp4", n=4, w=96, h=96)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    extract_frames(src, a, 48, fit="letterbox")
    extract_frames(src, b, 48, fit="crop")
    np.testing.assert_array_equal(np.load(a), np.load(b))


def test_real_videos_with_clip_level_labels(tmp_path, real_video_dir):
    """B-SOiD's example clips (real bottom-view mouse video, 1350x360 at 15 fps), linked into a
    folder, each but one with a per-frame CSV marking its named behaviour on every frame (the
    frame count from a full decode, not from the reader's container count)."""
    src = real_video_dir / "bsoid_bottomview" / "named_clips"
    clips = sorted(src.glob("*_hstacked.mp4"))
    names = [c.stem.removesuffix("_hstacked") for c in clips[:-1]]
    decoded = {}
    for c, b in zip(clips[:-1], names):
        (tmp_path / c.name).symlink_to(c)
        with av.open(str(c)) as f:
            decoded[c.stem] = sum(1 for _ in f.decode(video=0))
        _labels(
            tmp_path / f"{c.stem}.csv",
            [[i, *(int(x == b) for x in names)] for i in range(decoded[c.stem])],
            header=("frame", *names),
        )
    (tmp_path / clips[-1].name).symlink_to(clips[-1])
    ds = videos.read(tmp_path, log=lambda s: None)
    cs = ds.clips
    assert cs.clip_ids == [c.stem for c in clips[:-1]] and cs.tasks == names
    assert [v.clip_id for v in ds.video_only] == [clips[-1].stem]
    assert set(cs.fps) == {15.0} and list(cs.n_frames) == list(decoded.values())
    for k, c in enumerate(cs.clip_ids):
        lab = cs.labels_of(c)
        assert (lab[k] == 1).all() and (np.delete(lab, k, axis=0) == 0).all()


def test_the_sanity_knn_vs_the_control_is_a_sign_flip_test():
    """benchmarks/real_videos.py: the paired test of a trained run against the control."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import real_videos

    rng = np.random.default_rng(0)
    # known answer: every difference positive -> p = (1 + #flips all-positive-mean) / (1 + n)
    d = np.full(12, 1 / 3)
    p = real_videos.sign_flip_p(d, 4000, rng)
    assert p == pytest.approx(1 / 4001 + 0.5**12, abs=2e-3)
    # null: symmetric noise gives p roughly uniform; zero differences give p = 1
    ps = [real_videos.sign_flip_p(rng.normal(size=30), 400, rng) for _ in range(200)]
    assert 0.4 < np.mean(ps) < 0.6 and np.mean(np.array(ps) < 0.05) < 0.1
    assert real_videos.sign_flip_p(np.zeros(10), 100, rng) == 1.0
    # the hits: a clip next to its own label's twin hits, the others miss
    x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    y = np.array(["a", "a", "b", "c"])
    assert real_videos.loo_hits(x, y).tolist() == [True, True, False, False]


def test_a_recording_shorter_than_a_crop_fails_the_clip_list_naming_it(tmp_path):
    """A 3-frame video among a lab's recordings: the clip list (the first step, before any
    frame is extracted) names it with its length and the crop span, and writes nothing; the
    same folder lists fine for a dataset the experiment does not pretrain on."""
    from twbyol.data import index
    from twbyol.experiment import crop_span, min_clip_frames

    _video(tmp_path / "v" / "long.mp4", n=20)
    _video(tmp_path / "v" / "sub" / "blip.mp4", n=3)
    exp = {"pretrain_dataset": "lab", "crop": {"num_frames": 8, "stride": 2}}
    assert crop_span(exp) == 15 == min_clip_frames(exp, "lab")
    assert min_clip_frames(exp, "other") == 0
    assert crop_span({}) == (8 - 1) * 8 + 1  # CropConfig's defaults
    out = tmp_path / "clips.tsv"
    args = ["--format", "videos", "--root", str(tmp_path / "v"), "--n-shards", "1"]
    args += ["--clips-out", str(out)]
    with pytest.raises(ValueError, match=r"1 clip\(s\) shorter than .* crop span of 15") as e:
        index.main([*args, "--min-frames", "15"])
    assert "sub__blip (3 frames" in str(e.value) and "long" not in str(e.value).split(":")[-1]
    assert not out.exists()
    assert index.main([*args, "--min-frames", "0"]) == 0 and out.exists()

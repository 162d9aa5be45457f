"""The export stage: bouts of known per-frame calls, time budgets, BORIS events that twbyol's
own BORIS reader reads back to the same calls, NWB files read back with pynwb."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import _unavailable
from twbyol import io
from twbyol.bouts import bout_table, calls_of, time_budget
from twbyol.data.boris import read_exports, to_frames
from twbyol.exports import across_budget, export, nwb_missing
from twbyol.predictions import SUMMARY, write_predictions

B = ["groom", "rear", "sniff, nose"]
FPS = 10.0
# 12 frames: groom from frame 0 (3 frames) and a 1-frame bout at the last frame; rear a
# 1-frame bout in the middle and a bout to the end; sniff never
CALLS = np.zeros((12, 3), np.uint8)
CALLS[0:3, 0] = 1
CALLS[11, 0] = 1
CALLS[5, 1] = 1
CALLS[8:12, 1] = 1
SCORES = np.where(CALLS == 1, 1.0, -1.0) + np.arange(12)[:, None] / 100


def test_bouts_of_known_calls_edges_included():
    rows = bout_table(B, CALLS, SCORES, FPS)
    got = [(r["behaviour"], r["start_frame"], r["stop_frame"]) for r in rows]
    assert got == [("groom", 0, 2), ("groom", 11, 11), ("rear", 5, 5), ("rear", 8, 11)]
    g0, g1, r0, r1 = rows
    assert (g0["start_s"], g0["stop_s"], g0["duration_s"]) == (0.0, 0.3, 0.3)
    assert (g1["start_s"], g1["stop_s"]) == pytest.approx((1.1, 1.2))
    assert r0["duration_s"] == pytest.approx(0.1)
    assert g0["mean_score"] == pytest.approx(1.01)  # scores 1.00, 1.01, 1.02
    assert r1["mean_score"] == pytest.approx(1.095)  # 1.08 .. 1.11
    assert np.array_equal(calls_of(B, rows, 12), CALLS)
    assert bout_table(B, np.zeros((5, 3), np.uint8), np.zeros((5, 3)), FPS) == []


def test_time_budget_per_video_and_across_videos():
    rows = bout_table(B, CALLS, SCORES, FPS)
    tb = {r["behaviour"]: r for r in time_budget(B, rows, 1.2)}
    assert tb["groom"]["total_s"] == pytest.approx(0.4)
    assert tb["groom"]["percent"] == pytest.approx(100 * 0.4 / 1.2)
    assert (tb["groom"]["bouts"], tb["groom"]["mean_bout_s"]) == (2, pytest.approx(0.2))
    assert tb["rear"]["total_s"] == pytest.approx(0.5)
    assert tb["sniff, nose"]["bouts"] == 0 and np.isnan(tb["sniff, nose"]["mean_bout_s"])
    other = bout_table(B, np.zeros((8, 3), np.uint8), np.zeros((8, 3)), FPS)
    across = {r["behaviour"]: r for r in across_budget(B, [(rows, 1.2), (other, 0.8)])}
    assert across["groom"]["videos"] == 1 and across["groom"]["bouts"] == 2
    assert across["groom"]["percent"] == pytest.approx(100 * 0.4 / 2.0)
    assert across["sniff, nose"]["videos"] == 0


@pytest.fixture()
def predictions(tmp_path) -> Path:
    """A predictions folder of two clips (one with no bout at all) at FPS, as predict writes."""
    d = tmp_path / "pred"
    write_predictions(d / "a.csv", B, CALLS, SCORES, FPS)
    write_predictions(d / "b.csv", B, np.zeros((8, 3), np.uint8), -np.ones((8, 3)), FPS)
    io.write_json(
        d / SUMMARY,
        {
            "behaviours": B,
            "clips": ["a", "b"],
            "fps": {"a": FPS, "b": FPS},
            "media": {"a": "videos/a.mp4", "b": "videos/b.mp4"},
            "model": "m.pt",
            "probes": {"run_id": "tw", "seed": 0, "dataset": "mice", "f1": {}},
        },
    )
    return d


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_writes_tables_and_boris_events_that_read_back_to_the_calls(predictions, tmp_path):
    out = tmp_path / "export" / "mice"
    m = export(
        predictions, out, tmp_path / "mice.bouts.csv", tmp_path / "tb.csv", nwb=False, log=print
    )
    assert m["files"]["a"] == ["a.bouts.csv", "a.time_budget.csv", "a.boris.tsv"]
    bouts = _csv(out / "a.bouts.csv")
    assert [(r["behaviour"], r["start_frame"], r["stop_frame"], r["stop_s"]) for r in bouts] == [
        ("groom", "0", "2", "0.3000"),
        ("groom", "11", "11", "1.2000"),
        ("rear", "5", "5", "0.6000"),
        ("rear", "8", "11", "1.2000"),
    ]
    assert _csv(out / "b.bouts.csv") == []
    assert [r["clip"] for r in _csv(tmp_path / "mice.bouts.csv")] == ["a"] * 4
    tb = {r["behaviour"]: r for r in _csv(tmp_path / "tb.csv")}
    assert tb["groom"]["percent"] == "20.0000" and tb["sniff, nose"]["mean_bout_s"] == ""
    # twbyol's BORIS reader (a folder of BORIS exports beside the videos) reads it back
    root = tmp_path / "videos_root"
    vids = [root / "videos" / "a.mp4", root / "videos" / "b.mp4"]
    events = read_exports([out / "a.boris.tsv", out / "b.boris.tsv"], vids, root)
    names, labels = to_frames(events[vids[0]], 12, FPS)
    assert names == ["groom", "rear"]  # BORIS events exist only for behaviours with a bout
    assert np.array_equal(labels.T, CALLS[:, :2])
    assert vids[1] not in events  # no bout: a header alone


def test_export_falls_back_to_the_index_for_frame_rates(predictions, tmp_path):
    s = io.read_json(predictions / SUMMARY)
    del s["fps"], s["media"]
    io.write_json(predictions / SUMMARY, s)
    with pytest.raises(ValueError, match="give --index"):
        export(predictions, tmp_path / "o", tmp_path / "b.csv", tmp_path / "t.csv", nwb=False)
    index = tmp_path / "index.tsv"
    index.write_text(
        "clip_id\tn_frames\tfps\tsource\tshard\tstart\tend\tlabelled\tsplits\n"
        "a\t12\t10.0\tvideos/a.mp4\t0\t0\t12\t1\ttrain\n"
        "b\t8\t10.0\tvideos/b.mp4\t0\t12\t20\t1\ttrain\n"
    )
    export(predictions, tmp_path / "o", tmp_path / "b.csv", tmp_path / "t.csv", index, nwb=False)
    assert "videos/a.mp4" in (tmp_path / "o" / "a.boris.tsv").read_text()


def test_export_writes_nwb_that_reads_back_to_the_bouts(predictions, tmp_path):
    why = nwb_missing()
    if why:
        _unavailable(why)
    from pynwb import NWBHDF5IO

    out = tmp_path / "export"
    m = export(predictions, out, tmp_path / "b.csv", tmp_path / "t.csv", log=print)
    assert m["nwb"] and m["files"]["b"][-1] == "b.nwb"
    with NWBHDF5IO(str(out / "a.nwb"), "r") as f:
        nwb = f.read()
        mod = nwb.processing["behavior"]
        df = mod["bouts"].to_dataframe()
        assert df["label"].tolist() == ["groom", "groom", "rear", "rear"]
        assert df["start_time"].tolist() == pytest.approx([0.0, 1.1, 0.5, 0.8])
        assert df["stop_time"].tolist() == pytest.approx([0.3, 1.2, 0.6, 1.2])
        assert df["mean_score"].tolist()[0] == pytest.approx(1.01)
        assert mod["bouts"].labeling_method == "automated"
        assert mod["ethogram"].to_dataframe()["behavior"].tolist() == B
        scores = mod["scores"]
        assert scores.rate == FPS and np.allclose(scores.data[:], SCORES, atol=1e-4)
    with NWBHDF5IO(str(out / "b.nwb"), "r") as f:
        assert len(f.read().processing["behavior"]["bouts"]) == 0


def test_ethogram_pages_every_video_labelled_and_unlabelled(predictions, tmp_path):
    """One page per predicted video (the unlabelled `b` included) in the videos PDF; the
    summary figure's manifest names it."""
    from twbyol.ethogram import ethogram

    np.savez(
        tmp_path / "labels.npz",
        tasks=np.array(B[:2]),
        task_types=np.array(["Discrete", "Discrete"]),
        sequence_level=np.zeros(2, bool),
        label_array=CALLS[:, :2].T.astype(np.float32),
        clips=np.array(["a"]),
        starts=np.array([0]),
        ends=np.array([12]),
    )
    (tmp_path / "index.tsv").write_text(
        "clip_id\tn_frames\tfps\tsource\tshard\tstart\tend\tlabelled\tsplits\n"
        "a\t12\t10.0\tvideos/a.mp4\t0\t0\t12\t1\tprivateTest\n"
        "b\t8\t10.0\tvideos/b.mp4\t0\t12\t20\t0\t\n"
    )
    info = ethogram(
        predictions, tmp_path / "labels.npz", tmp_path / "index.tsv", "mice", tmp_path / "img"
    )
    assert info["clips"] == ["a", "b"] and info["videos"] == ["a", "b"]
    assert info["f1"] == {"groom": 1.0, "rear": 1.0}  # labels = the calls
    pdf = (tmp_path / "img" / "ethogram_mice_videos.pdf").read_bytes()
    assert pdf[:4] == b"%PDF" and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") == 2
    m = io.read_json(tmp_path / "img" / "ethogram_mice.json")
    assert m["videos_pdf"] == "ethogram_mice_videos.pdf" and m["figures"][0]["name"] == (
        "ethogram_mice"
    )

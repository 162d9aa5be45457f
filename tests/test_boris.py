"""BORIS exports as labels of a folder of videos (twbyol.data.boris via twbyol.data.videos).

The exports are written with BORIS's own headers (8.x/9.x aggregated and tabular events, and
the 7.x tabular layout with its preamble): docs/own_videos.md gives the sources.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.test_videos import _video
from twbyol.data import videos

AGG = [
    "Observation id", "Observation date", "Description", "Observation type", "Source",
    "Time offset (s)", "Coding duration", "Media duration (s)", "FPS (frame/s)", "Subject",
    "Observation duration by subject by observation", "Behavior", "Behavioral category",
    "Behavior type", "Start (s)", "Stop (s)", "Duration (s)", "Media file name",
    "Image index start", "Image index stop", "Image file path start", "Image file path stop",
    "Comment start", "Comment stop",
]  # fmt: skip
TAB = [
    "Observation id", "Observation date", "Description", "Observation duration",
    "Observation type", "Source", "Time offset (s)", "Media duration (s)", "FPS", "Subject",
    "Behavior", "Behavioral category", "Behavior type", "Time", "Media file name",
    "Image index", "Image file path", "Comment",
]  # fmt: skip


def _write(path: Path, header: list[str], rows: list[dict], delim: str = ",", pre=()) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delim)
        for r in pre:
            w.writerow(r)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])
    return path


def _agg(media, behaviour, kind, start, stop, subject="No focal subject", offset="0.0", **kw):
    return {
        "Observation id": "obs1", "Observation type": "Media file",
        "Source": f"player #1:{media}", "Time offset (s)": offset, "Subject": subject,
        "Behavior": behaviour, "Behavior type": kind, "Start (s)": f"{start:.3f}",
        "Stop (s)": f"{stop:.3f}", "Media file name": media, "FPS (frame/s)": "10.000", **kw,
    }  # fmt: skip


def _tab(media, behaviour, kind, t, subject="", offset="0.0"):
    return {
        "Observation id": "obs1", "Observation type": "Media file(s)",
        "Source": f"player #1:{media}", "Time offset (s)": offset, "Subject": subject,
        "Behavior": behaviour, "Behavior type": kind, "Time": f"{t:.3f}",
        "Media file name": media, "FPS": "10.000",
    }  # fmt: skip


@pytest.fixture
def folder(tmp_path) -> Path:
    _video(tmp_path / "vids" / "a.mp4", n=20, fps=10)  # 2 s
    _video(tmp_path / "vids" / "b.mp4", n=20, fps=10)
    return tmp_path


def test_aggregated_export_marks_bouts_and_points(folder):
    a = str(folder / "vids" / "a.mp4")  # an absolute path, as BORIS stores it by default
    _write(
        folder / "scoring.tsv",
        AGG,
        [
            _agg(a, "groom", "STATE", 0.3, 0.8),
            _agg(a, "groom", "STATE", 1.2, 1.5),
            _agg(a, "sniff", "POINT", 1.0, 1.0, **{"Duration (s)": "NA"}),
        ],
        delim="\t",
    )
    ds = videos.read(folder, log=lambda s: None)
    assert ds.clips.clip_ids == ["vids__a"] and ds.clips.tasks == ["groom", "sniff"]
    lab = ds.clips.labels_of("vids__a")
    assert np.flatnonzero(lab[0]).tolist() == [3, 4, 5, 6, 7, 12, 13, 14]
    assert np.flatnonzero(lab[1]).tolist() == [10]
    assert [v.clip_id for v in ds.video_only] == ["vids__b"]


def test_tabular_export_pairs_start_and_stop_and_subtracts_the_offset(folder):
    rows = [
        _tab("vids/b.mp4", "rear", "START", 10.5, offset="10.0"),
        _tab("vids/b.mp4", "rear", "STOP", 11.0, offset="10.0"),
        _tab("b.mp4", "rear", "POINT", 11.9, offset="10.0"),  # by file name
    ]
    _write(folder / "events.csv", TAB, rows)
    ds = videos.read(folder, log=lambda s: None)
    lab = ds.clips.labels_of("vids__b")
    assert ds.clips.tasks == ["rear"]
    assert np.flatnonzero(lab[0]).tolist() == [5, 6, 7, 8, 9, 19]


def test_two_subjects_give_a_behaviour_each(folder):
    rows = [
        _agg("a.mp4", "chase", "STATE", 0.0, 0.5, subject="m1"),
        _agg("a.mp4", "chase", "STATE", 0.2, 0.6, subject="m2"),  # overlaps m1's: fine
    ]
    _write(folder / "s.csv", AGG, rows)
    ds = videos.read(folder, log=lambda s: None)
    assert ds.clips.tasks == ["m1: chase", "m2: chase"]


def test_boris_7_tabular_export_with_its_preamble(folder):
    header = ["Time", "Media file path", "Total length", "FPS", "Subject", "Behavior",
              "Behavioral category", "Comment", "Status"]  # fmt: skip
    pre = [["Observation id", "obs1"], [], ["Media file(s)"], [], ["Player #1", "a.mp4"], [],
           ["Time offset (s)", "0.0"], []]  # fmt: skip
    rows = [
        {"Time": "0.2", "Media file path": "a.mp4", "Behavior": "walk", "Status": "START"},
        {"Time": "0.6", "Media file path": "a.mp4", "Behavior": "walk", "Status": "STOP"},
    ]
    _write(folder / "old.csv", header, rows, pre=pre)
    ds = videos.read(folder, log=lambda s: None)
    assert np.flatnonzero(ds.clips.labels_of("vids__a")[0]).tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "rows, match",
    [
        ([_tab("a.mp4", "rear", "START", 0.1)], r"ev\.csv: row 2: 'rear' starts and never stops"),
        ([_tab("a.mp4", "rear", "STOP", 0.1)], r"ev\.csv: row 2: 'rear' stops without a START"),
        (
            [_tab("a.mp4", "rear", "START", 0.1), _tab("a.mp4", "rear", "START", 0.2)],
            r"ev\.csv: row 3: 'rear' starts again before its STOP \(started at row 2\)",
        ),
        ([_tab("c.mp4", "rear", "POINT", 0.1)], r"ev\.csv: row 2: media file 'c.mp4' names no"),
        (
            [_tab("a.mp4", "rear", "POINT", 3.5)],
            r"ev\.csv, row 2: 'rear' at 3\.500-3\.500 s lies outside the video \(20 frames",
        ),
        ([_tab("a.mp4", "rear", "PAUSE", 0.1)], r"row 2: event type 'PAUSE' is not START"),
    ],
)
def test_bad_tabular_exports_fail_naming_file_and_row(folder, rows, match):
    _write(folder / "ev.csv", TAB, rows)
    with pytest.raises(ValueError, match=match):
        videos.read(folder, log=lambda s: None)


def test_overlapping_bouts_of_one_state_fail(folder):
    rows = [_agg("a.mp4", "groom", "STATE", 0.1, 0.9), _agg("a.mp4", "groom", "STATE", 0.5, 1.2)]
    _write(folder / "agg.csv", AGG, rows)
    with pytest.raises(ValueError, match=r"agg\.csv, row 3: bout of 'groom' from 0\.500 s"):
        videos.read(folder, log=lambda s: None)


def test_multi_file_observations_and_unknown_behaviours_fail(folder):
    row = _agg("a.mp4", "groom", "STATE", 0.1, 0.9)
    _write(folder / "agg.csv", AGG, [{**row, "Source": "player #1:a.mp4;b.mp4"}])
    with pytest.raises(ValueError, match=r"agg\.csv: row 2: the observation plays several"):
        videos.read(folder, log=lambda s: None)
    _write(folder / "agg.csv", AGG, [row])
    with pytest.raises(ValueError, match=r"agg\.csv, row 2: behaviour 'groom' is not one of"):
        videos.read(folder, behaviours=["rear"], log=lambda s: None)


def test_a_video_labelled_by_csv_and_boris_fails(folder):
    n = 20
    (folder / "vids" / "a.csv").write_text("frame,groom\n" + "".join(f"{i},0\n" for i in range(n)))
    _write(folder / "agg.csv", AGG, [_agg("a.mp4", "groom", "STATE", 0.1, 0.9)])
    with pytest.raises(ValueError, match=r"a\.mp4: labelled twice, by a\.csv and by"):
        videos.read(folder, log=lambda s: None)

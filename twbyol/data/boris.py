"""BORIS event exports (olivierfriard/BORIS) as per-frame labels of a folder of videos.

Read (comma .csv or tab .tsv, as BORIS's tablib writer emits them; exact headers and their
sources in docs/own_videos.md):

- **aggregated events** (Observations > Export aggregated events): one row per bout,
  `Behavior type` STATE (`Start (s)`, `Stop (s)`) or POINT (Stop = Start); the media file in
  `Media file name` (BORIS 8.x/9.x) or `Media file` (7.x);
- **tabular events** (Observations > Export events): one row per event, `Behavior type`
  START / STOP / POINT at `Time`, the media file in `Media file name` (8.x/9.x); or the 7.x
  layout, a preamble of `key,value` lines then `Time, Media file path, ..., Status`.

BORIS's times are seconds from the start of the observation's media plus its `Time offset
(s)`; the offset is subtracted here. An observation that plays several media files one after
the other (`Source` "player #1:a.mp4;b.mp4") is refused: its times run across the files.
Media files are matched to the videos under the dataset root by path (as BORIS stored it:
absolute, or relative to the root) or, failing that, by file name, which must then be unique.

On frames (the video's fps from its container): a state bout [start, stop) marks frames
round(start * fps) .. round(stop * fps) - 1 (at least one frame), a point event frame
round(t * fps); every other frame of an exported video is 0 (BORIS scores the whole video).
Behaviours are named by `Behavior`, or `subject: behavior` when an export names more than one
subject. Errors name the file and the row: an unknown layout, a START without STOP (or the
reverse), overlapping bouts of one behaviour of one subject (a state excludes itself), an
event outside the video, a media file that names no video under the root.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from twbyol.io import files_under

EXPORT_SUFFIXES = (".csv", ".tsv")
NO_SUBJECT = ("", "No focal subject", "NA")


@dataclass(frozen=True)
class Event:
    """One bout (state) or point event of one video, in seconds of the video."""

    behaviour: str
    subject: str
    start: float
    stop: float  # == start for a point event
    point: bool
    source: str  # "file, row N" (N: line in the file, 1-based)


def _read_rows(path: Path) -> list[list[str]]:
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [r for r in csv.reader(f, delimiter=delim)]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: not a readable {delim!r}-separated file ({e})") from None


def _layout(rows: list[list[str]]) -> tuple[str, int] | None:
    """(layout, header line index) of a BORIS export, or None when the file is not one."""
    for i, row in enumerate(rows[:60]):
        cells = [c.strip() for c in row]
        if "Behavior" not in cells or "Behavior type" not in cells and "Status" not in cells:
            continue
        if "Start (s)" in cells and "Stop (s)" in cells:
            return "aggregated", i
        if "Time" in cells and "Behavior type" in cells:
            return "tabular", i
        if cells[:1] == ["Time"] and "Status" in cells:
            return "tabular7", i
    return None


def is_export(path: Path) -> bool:
    """Whether `path` is a BORIS export this module reads."""
    return _layout(_read_rows(path)) is not None


def find_exports(root: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """The BORIS exports among the .csv/.tsv files under `root` (hidden ones skipped), except
    `exclude` (the per-frame label files beside videos)."""
    skip = {Path(p).resolve() for p in exclude}
    found = (p.resolve() for p in files_under(root, EXPORT_SUFFIXES))
    return [p for p in found if p not in skip and is_export(p)]


def _number(path: Path, line: int, column: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            f"{path}: row {line}, column {column!r}: {value!r} is not a number of seconds"
        ) from None


def _offset(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "NA") else 0.0
    except ValueError:
        return 0.0


def _records(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line, {column: value}) of each event row of an export, the 7.x tabular preamble's
    time offset and media path copied into every row."""
    rows = _read_rows(path)
    found = _layout(rows)
    if found is None:
        raise ValueError(f"{path}: not a BORIS aggregated or tabular events export")
    layout, h = found
    header = [c.strip() for c in rows[h]]
    extra = {"_layout": layout}
    if layout == "tabular7":
        for row in rows[:h]:
            if len(row) >= 2 and row[0].strip() == "Time offset (s)":
                extra["Time offset (s)"] = row[1].strip()
    out = []
    for i, row in enumerate(rows[h + 1 :], start=h + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise ValueError(f"{path}: row {i} has {len(row)} cells for the header's {len(header)}")
        rec = dict(zip(header, (c.strip() for c in row)))
        rec.update({k: v for k, v in extra.items() if k not in rec or k == "_layout"})
        out.append((i, rec))
    return out


def _media(rec: dict[str, str]) -> str:
    for col in ("Media file name", "Media file", "Media file path"):
        if rec.get(col):
            return rec[col]
    return ""


class _Videos:
    """Resolve a media path as BORIS stored it to one of the dataset's videos."""

    def __init__(self, paths: list[Path], root: Path) -> None:
        self.root = root
        self.by_path = {p.resolve(): p for p in paths}
        self.by_name: dict[str, list[Path]] = {}
        for p in paths:
            self.by_name.setdefault(p.name, []).append(p)

    def find(self, media: str, where: str) -> Path:
        if not media or media in ("NA", "Not found", "LIVE"):
            raise ValueError(
                f"{where}: the event names no media file ({media!r}); export from an "
                "observation of a media file"
            )
        cand = Path(media.replace("\\", "/"))
        for p in (cand, self.root / cand):
            if p.is_absolute() and p.resolve() in self.by_path:
                return self.by_path[p.resolve()]
        hits = self.by_name.get(cand.name, [])
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(
                f"{where}: media file {media!r} matches {len(hits)} videos by name under "
                f"{self.root} ({', '.join(str(h.relative_to(self.root)) for h in hits)}); "
                "give it by path"
            )
        raise ValueError(f"{where}: media file {media!r} names no video under {self.root}")


def read_exports(exports: list[Path], videos: list[Path], root: Path) -> dict[Path, list[Event]]:
    """{video path: its events} from every export; every event row must resolve to a video."""
    vids = _Videos(videos, root)
    out: dict[Path, list[Event]] = {}
    for path in exports:
        events = _events(path, vids)
        subjects = {e.subject for evs in events.values() for e in evs} - set(NO_SUBJECT)
        for video, evs in events.items():
            if video in out:
                raise ValueError(
                    f"{path}: events of {video.name} are also in {out[video][0].source}; "
                    "one export per video"
                )
            if len(subjects) > 1:
                evs = [
                    e
                    if e.subject in NO_SUBJECT
                    else replace(e, behaviour=f"{e.subject}: {e.behaviour}")
                    for e in evs
                ]
            out[video] = evs
    return out


def _events(path: Path, vids: _Videos) -> dict[Path, list[Event]]:
    out: dict[Path, list[Event]] = {}
    open_states: dict[tuple[Path, str, str], tuple[float, int]] = {}
    for line, rec in _records(path):
        where = f"{path}: row {line}"
        source = rec.get("Source", "")
        if ";" in source.split("|")[0]:
            raise ValueError(
                f"{where}: the observation plays several media files one after the other "
                f"({source!r}); export one observation per video"
            )
        video = vids.find(_media(rec), where)
        behaviour, subject = rec.get("Behavior", ""), rec.get("Subject", "")
        if not behaviour:
            raise ValueError(f"{where}: no behaviour in column 'Behavior'")
        off = _offset(rec.get("Time offset (s)"))
        kind = (rec.get("Behavior type") or rec.get("Status") or "").upper()
        layout = rec["_layout"]
        evs = out.setdefault(video, [])
        src = f"{path}, row {line}"
        if layout == "aggregated":
            start = _number(path, line, "Start (s)", rec["Start (s)"]) - off
            if kind == "POINT":
                evs.append(Event(behaviour, subject, start, start, True, src))
            elif kind == "STATE":
                stop = _number(path, line, "Stop (s)", rec["Stop (s)"]) - off
                if stop < start:
                    raise ValueError(f"{where}: the bout stops ({stop:.3f} s) before it starts")
                evs.append(Event(behaviour, subject, start, stop, False, src))
            else:
                raise ValueError(f"{where}: Behavior type {kind!r} is not STATE or POINT")
            continue
        t = _number(path, line, "Time", rec["Time"]) - off
        key = (video, subject, behaviour)
        if kind == "POINT":
            evs.append(Event(behaviour, subject, t, t, True, src))
        elif kind == "START":
            if key in open_states:
                raise ValueError(
                    f"{where}: {behaviour!r} starts again before its STOP (started at row "
                    f"{open_states[key][1]})"
                )
            open_states[key] = (t, line)
        elif kind == "STOP":
            if key not in open_states:
                raise ValueError(f"{where}: {behaviour!r} stops without a START")
            start, _ = open_states.pop(key)
            evs.append(Event(behaviour, subject, start, t, False, src))
        else:
            raise ValueError(f"{where}: event type {kind!r} is not START, STOP or POINT")
    if open_states:
        (_, _, behaviour), (_, line) = next(iter(open_states.items()))
        raise ValueError(f"{path}: row {line}: {behaviour!r} starts and never stops")
    return out


def to_frames(events: list[Event], n_frames: int, fps: float) -> tuple[list[str], np.ndarray]:
    """(behaviours, float32 (n_behaviours, n_frames)) of one video's events: 1 on the frames of
    a bout or point event, 0 elsewhere (module docstring)."""
    names: list[str] = []
    for e in events:
        if e.behaviour not in names:
            names.append(e.behaviour)
    labels = np.zeros((len(names), n_frames), np.float32)
    last_stop: dict[str, tuple[int, str]] = {}
    for e in sorted(events, key=lambda e: (e.behaviour, e.start, e.stop)):
        a = int(round(e.start * fps))
        b = a + 1 if e.point else max(int(round(e.stop * fps)), a + 1)
        if a == n_frames and b == a + 1:  # an event on the video's very end: its last frame
            a, b = a - 1, b - 1
        b = n_frames if b == n_frames + 1 else b
        if a < 0 or b > n_frames:
            raise ValueError(
                f"{e.source}: {e.behaviour!r} at {e.start:.3f}-{e.stop:.3f} s lies outside "
                f"the video ({n_frames} frames at {fps:g} fps = {n_frames / fps:.3f} s)"
            )
        prev = last_stop.get(e.behaviour)
        if prev is not None and a < prev[0] and not e.point:
            raise ValueError(
                f"{e.source}: bout of {e.behaviour!r} from {e.start:.3f} s overlaps the one "
                f"of {prev[1]} (a state cannot overlap itself)"
            )
        labels[names.index(e.behaviour), a:b] = 1
        if not e.point:
            last_stop[e.behaviour] = (b, e.source)
    return names, labels

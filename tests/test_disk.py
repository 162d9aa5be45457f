"""A full disk says so, before and during: frame extraction on a small tmpfs (twbyol.io's
DiskFull, require_space, reserve; twbyol.data.frames)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from twbyol import io
from twbyol.data import frames
from twbyol.data.clips import VideoOnlyClip
from twbyol.data.index import clip_frame
from twbyol.synthetic.render import encode_video

SIZE = 128  # 16 KB a frame


@pytest.fixture()
def tmpfs(tmp_path):
    """A mount of its own (1 MB), resized by the test (`tmpfs(nbytes)`), unmounted after."""
    where = tmp_path / "disk"
    where.mkdir()

    def mount(nbytes: int, remount: bool = False) -> Path:
        opts = f"size={nbytes}" + (",remount" if remount else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True)
        return where

    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the full-disk tests need a tmpfs mount")
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    try:
        mount(1 << 20)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"this machine does not allow a tmpfs mount: {e}")

    def resize(nbytes: int) -> Path:  # the mount made above, never a second one over it
        return mount(nbytes, remount=True)

    yield resize
    subprocess.run(["umount", "-l", str(where)], check=True)  # lazily: a test's map
    assert not os.path.ismount(where), f"{where}: still mounted"


def _shard(tmp_path: Path, n_frames: int) -> tuple[Path, list[str]]:
    """A clip list of one 2-clip shard (a 64 x 48 gray video each) and its CLI arguments
    but the output folder."""
    videos = tmp_path / "videos"
    videos.mkdir()
    clips = []
    for name in ("a", "b"):
        path = videos / f"{name}.mp4"
        encode_video(path, (np.full((48, 64), 5 * i, np.uint8) for i in range(n_frames)), 30)
        clips.append(VideoOnlyClip(name, path, n_frames, 30.0))
    table = tmp_path / "clips.tsv"
    table.write_text(clip_frame(clips, 1, videos).to_csv(sep="\t", index=False))
    args = ["--clips", str(table), "--shard", "0", "--size", str(SIZE), "--fit", "letterbox"]
    return table, [*args, "--root", str(videos)]


def test_a_full_disk_fails_before_extraction_naming_the_bytes(tmp_path, tmpfs):
    """2 clips x 40 frames x 16 KB = 1.3 MB on a 1 MB disk: refused before decoding, with
    the folder, the bytes needed and free; nothing written; with room the same command
    finishes."""
    _, args = _shard(tmp_path, 40)
    out = tmpfs(1 << 20)
    cmd = [*args, "--out-dir", str(out / "frames"), "--done", str(out / "shard0.done")]
    need = 2 * (frames.NPY_HEADER + 40 * SIZE * SIZE)
    with pytest.raises(io.DiskFull) as e:
        frames.main(cmd)
    msg = str(e.value)
    assert str(out / "frames") in msg and f"{need / 1e6:.1f} MB" in msg and "free" in msg
    assert not (out / "shard0.done").exists() and not list(out.rglob("*.npy*"))
    tmpfs(4 << 20)
    assert frames.main(cmd) == 0
    assert json.loads((out / "shard0.done").read_text())["frames"] == 80
    assert np.load(out / "frames" / "b.npy", mmap_mode="r").shape == (40, SIZE, SIZE)


def test_a_disk_that_fills_during_extraction_is_an_error_not_a_bus_error(
    tmp_path, tmpfs, monkeypatch
):
    """The space check passed (another writer filled the disk since): the clip's file is
    allocated before it is mapped, so the full disk is a DiskFull naming the clip's file,
    not SIGBUS; the clip done before it stays, the failed one leaves no file, no .done."""
    _, args = _shard(tmp_path, 40)
    out = tmpfs(1 << 20)
    cmd = [*args, "--out-dir", str(out / "frames"), "--done", str(out / "shard0.done")]
    monkeypatch.setattr(frames, "require_space", lambda *a: None)  # as if it had passed
    with pytest.raises(io.DiskFull, match=r"b\.npy: no space left on its disk \(needs "):
        frames.main(cmd)
    left = sorted(p.name for p in (out / "frames").iterdir())
    assert left == ["a.npy"] and not (out / "shard0.done").exists()
    assert np.load(out / "frames" / "a.npy").shape == (40, SIZE, SIZE)


def test_any_atomic_write_on_a_full_disk_names_its_path_and_leaves_nothing(tmpfs):
    out = tmpfs(1 << 20)
    with pytest.raises(io.DiskFull, match=r"big\.json: no space left on its disk"):
        io.write_json(out / "big.json", {"x": "y" * (2 << 20)})
    assert not list(out.iterdir())


def test_the_shard_needs_what_it_adds_and_one_temporary_copy(tmp_path):
    rows = clip_frame(
        [VideoOnlyClip(c, tmp_path / f"{c}.mp4", n, 30.0) for c, n in (("a", 10), ("b", 30))],
        1,
        tmp_path,
    )
    each = {"a": 128 + 10 * 64, "b": 128 + 30 * 64}
    assert frames.shard_bytes(rows, tmp_path, 8) == each["a"] + each["b"]
    np.save(tmp_path / "b.npy", np.zeros((30, 8, 8), np.uint8))  # b is there already
    assert frames.shard_bytes(rows, tmp_path, 8) == each["a"] + each["b"]  # + b's new copy


def test_an_atomic_folder_appears_whole_or_leaves_the_old_one(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.csv").write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_dir(out) as tmp:
            (tmp / "new.csv").write_text("half")
            raise RuntimeError("killed midway")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left
    assert [p.name for p in out.iterdir()] == ["old.csv"]
    with io.atomic_dir(out) as tmp:
        (tmp / "new.csv").write_text("whole")
    assert [p.name for p in out.iterdir()] == ["new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

"""Atomic file output: every artifact is written to a temp file beside it, then renamed.

A killed job therefore never leaves a file that looks complete (DESIGN: artifact contract).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0o022)
os.umask(_UMASK)


class DiskFull(OSError):
    """No room for an output: the message names the path, the bytes needed (where known)
    and the bytes free."""


NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


def _gb(n: float) -> str:
    return f"{n / 1e9:.3f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the disk of `path` (its nearest existing folder), for an ordinary user."""
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def disk_full(path: str | os.PathLike, needed: int | None = None) -> DiskFull:
    """The DiskFull error of writing `path` (`needed` bytes, when known)."""
    want = f"needs {_gb(needed)}, " if needed is not None else ""
    return DiskFull(
        errno.ENOSPC,
        f"{path}: no space left on its disk ({want}{_gb(free_bytes(path))} free); nothing "
        "was left that looks complete: free space (or point results/ at a larger disk) and "
        "run the same command again",
    )


def require_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """DiskFull before any work when `folder`'s disk has fewer than `needed` bytes free."""
    free = free_bytes(folder)
    if needed > free:
        raise DiskFull(
            errno.ENOSPC,
            f"{folder}: {what} need {_gb(needed)} and its disk has {_gb(free)} free; free "
            "space (or point results/ at a larger disk) and run the same command again",
        )


def reserve(path: str | os.PathLike, nbytes: int, name: str | os.PathLike | None = None) -> None:
    """Allocate the first `nbytes` of the existing file `path` on its disk now (a memory map
    written past a full disk dies of SIGBUS; an allocation fails here, as DiskFull naming
    `name`: the output a temporary `path` becomes)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno in NO_ROOM:
            raise disk_full(name or path, nbytes) from e
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no allocation there: write on
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path in the target's folder; rename it onto `path` only on success.

    `suffix` defaults to the target's own suffix so that writers which append one
    (np.save adds .npy, np.savez .npz) write exactly the yielded path. A full disk while
    writing is DiskFull naming `path`, and leaves nothing behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(  # created 0600: opened up to the umask's mode before the rename
        prefix=f".{path.name}.",
        suffix=suffix if suffix is not None else path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # readable by the lab, as an ordinary file would be
        os.replace(tmp_path, path)
    except OSError as e:
        if e.errno in NO_ROOM and not isinstance(e, DiskFull):
            tmp_path.unlink(missing_ok=True)
            raise disk_full(path) from e
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temp folder beside `path`; on success it replaces `path` (an existing
    folder of that name is removed first), on failure it is removed: a folder of outputs
    appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def files_under(root: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """The files below `root` whose suffix (any case) is one of `suffixes`, top-down with
    each folder's entries sorted; hidden folders and files (".*") skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [
            Path(dirpath) / f
            for f in sorted(filenames)
            if not f.startswith(".") and Path(f).suffix.lower() in suffixes
        ]
    return out


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not valid JSON ({e})") from None
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_arg(value: str) -> Any:
    """A command-line JSON argument: inline JSON (what Snakemake rules pass) or a file path."""
    if value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid inline JSON ({e}): {value[:80]}") from None
    return read_json(value)

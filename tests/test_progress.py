"""Progress lines: when they are due, their rate and ETA, and the training loop's lines."""

from __future__ import annotations

import json
import re

import pytest

from tests.test_train import cfg
from twbyol.progress import Progress, duration
from twbyol.train import train


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_due_at_the_first_and_last_unit_every_n_and_once_a_minute():
    clock = Clock()
    p = Progress(total=100, unit="step", every=25, interval_s=60, clock=clock)
    assert [k for k in range(1, 101) if p.due(k)] == [1, 25, 50, 75, 100]
    p = Progress(total=100, unit="step", every=0, interval_s=60, start=40, clock=clock)
    assert p.due(41) and not p.due(42) and p.due(100)
    clock.t = 59.9
    assert not p.due(50)
    clock.t = 60.0
    assert p.due(50)
    p.line(50)  # a line resets the minute
    clock.t = 100.0
    assert not p.due(51)


def test_rate_and_eta_count_from_the_resumed_unit():
    clock = Clock()
    p = Progress(total=1000, unit="frame", start=200, clock=clock)
    clock.t = 10.0
    line = p.line(300, prefix="[embed]", loss="0.5")
    # 100 frames in 10 s since the start at 200: 10 frames/s, 700 left: 70 s
    assert p.rate(300) == 10.0
    assert line == (
        "[embed] frame 300/1000 (30 %) | loss 0.5 | 10 frames/s | elapsed 0:00:10 | eta 0:01:10"
    )
    assert p.line(1000).endswith("eta 0:00:00")
    assert duration(float("nan")) == "?" and duration(90061) == "1 day, 1:01:01"


def test_training_prints_progress_lines_with_every_field(frames, tmp_path, capsys):
    """3 epochs of 3 steps, a line every 4 steps: steps 1 (the loop is running), 4, 8 and 9
    (the last), each with epoch, step, loss, samples/s, data and compute time, memory, ETA."""
    train(cfg(frames, tmp_path / "run", log_every=4))
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[tw seed 0]")]
    steps = [int(re.search(r"step (\d+)/9", x)[1]) for x in lines]
    assert steps == [1, 4, 8, 9], lines
    epochs = [int(re.search(r"epoch (\d)/3", x)[1]) for x in lines]
    assert epochs == [1, 2, 3, 3], lines
    for x in lines:
        for field in ("loss ", "epoch mean ", "samples per s ", "data ", "compute ", "peak mem "):
            assert f"| {field}" in x, (field, x)
        assert re.search(r"\| eta \d+:\d\d:\d\d$", x), x
    assert float(re.search(r"\| loss ([\d.]+)", lines[-1])[1]) > 0


def test_embedding_reports_frames_done_rate_and_eta(frames, tmp_path, capsys):
    from twbyol.embed import embed
    from twbyol.features import EmbedConfig

    out = tmp_path / "run"
    train(cfg(frames, out, epochs=1))
    capsys.readouterr()
    emb = tmp_path / "e.npy"
    info = embed(
        str(out / "model.pt"),
        str(frames),
        str(frames / "index.tsv"),
        str(emb),
        str(tmp_path / "p.npz"),
        EmbedConfig(window_stride=2),
    )
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[embed]")]
    n = info["frames"]
    assert lines and lines[-1].startswith("[embed] clip ") and f"frame {n}/{n} (100 %)" in lines[-1]
    assert re.search(r"\| [\d.e+]+ frames/s \| elapsed .* \| eta 0:00:00$", lines[-1])


def test_training_writes_tensorboard_scalars(frames, tmp_path):
    """With the optional extra installed (make setup installs it): the progress lines' and
    epoch lines' numbers as scalars in the run's tensorboard/ folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(cfg(frames, out, log_every=4))
    board = EventAccumulator(str(out / "tensorboard"))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"step/loss", "step/samples_per_s", "step/data_ms", "epoch/loss", "epoch/lr"} <= tags
    assert [e.step for e in board.Scalars("step/loss")] == [1, 4, 8, 9]
    assert [e.step for e in board.Scalars("epoch/loss")] == [3, 6, 9]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in board.Scalars("epoch/loss")] == pytest.approx(
        [m["loss"] for m in metrics], rel=1e-6
    )

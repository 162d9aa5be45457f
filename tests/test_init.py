"""`twbyol init`: a first experiment for a folder of videos, valid as written."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from twbyol import init
from twbyol.synthetic.render import encode_video


def _folder(tmp_path, labelled=2, unlabelled=1, fps=(30.0, 15.0, 120.0), n=40):
    """Videos of `n` frames at the given rates; the first `labelled` with a label CSV."""
    folder = tmp_path / "cage videos"
    for i in range(labelled + unlabelled):
        v = folder / ("day1" if i % 2 else "day2") / f"mouse {i}.mp4"
        v.parent.mkdir(parents=True, exist_ok=True)
        frames = (np.full((48, 64), (5 * t) % 256, np.uint8) for t in range(n))
        encode_video(v, frames, fps[i % len(fps)])
        if i < labelled:
            rows = "".join(f"{t},{(t // 10) % 2},{int(t > 30)}\n" for t in range(n))
            v.with_suffix(".csv").write_text("frame,groom,rear\n" + rows)
    return folder


CPU = {"gpus": 0, "cpus": 2}
GPU = {"gpus": 4, "cpus": 32}


@pytest.mark.parametrize("m", [CPU, GPU], ids=["cpu", "gpu"])
def test_the_experiment_is_valid_as_written_and_sized_for_the_machine(tmp_path, m):
    folder = _folder(tmp_path)
    out = tmp_path / "mylab.yaml"
    exp = init.write(folder, "mylab", out, m)
    written = yaml.safe_load(out.read_text())["experiments"]["mylab"]
    assert written == exp
    init.validate("mylab", written)  # the schema and the workflow's cross-key checks
    ds = written["datasets"]["mylab"]
    assert ds["format"] == "videos" and ds["path"] == str(folder.resolve())
    assert "study" not in written and written["predict"]["runs"] == ["twbyol_1s"]
    runs = written["runs"]
    assert runs["byol_uniform"]["weighting"] == "uniform"
    assert runs["twbyol_1s"]["tau_s"] == 1.0 and runs["random_init"]["method"] == "random_init"
    # the median rate of 30, 15 and 120 fps is 30: centres 4 frames (133 ms) apart
    assert written["embedding"]["window_stride"] == 4
    t = written["training"]
    if m["gpus"]:
        assert (
            ds["frames"]["size"] == 128
            and t["epochs"] * t["samples_per_epoch"] // t["batch_size"] == 2000
        )
        assert written["resources"]["gpus_per_node"] == 4
    else:
        assert (
            ds["frames"]["size"] == 64
            and t["epochs"] * t["samples_per_epoch"] // t["batch_size"] == 400
        )
    assert any(x.startswith("# Run it: snakemake --cores") for x in out.read_text().splitlines())


def test_the_cli_names_the_experiment_after_the_folder_and_prints_the_command(
    tmp_path, monkeypatch, capsys
):
    folder = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(init, "machine", lambda: CPU)
    assert init.main(["--videos", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "cage_videos.yaml").exists()
    assert "snakemake --cores" in out and "cage_videos --configfile cage_videos.yaml" in out
    # run again: the file is kept, and the error says so
    assert init.main(["--videos", str(folder)]) == 2
    assert "cage_videos.yaml: exists" in capsys.readouterr().err


def test_bad_folders_and_names_are_errors_naming_them(tmp_path, capsys):
    unlabelled = _folder(tmp_path / "a", labelled=0, unlabelled=2)
    with pytest.raises(ValueError, match="no labelled video"):
        init.write(unlabelled, "lab", tmp_path / "lab.yaml", CPU)
    with pytest.raises(FileNotFoundError, match="no videos"):
        (tmp_path / "empty").mkdir()
        init.write(tmp_path / "empty", "lab", tmp_path / "lab.yaml", CPU)
    with pytest.raises(ValueError, match="--name '2lab'"):
        init.write(unlabelled, "2lab", tmp_path / "lab.yaml", CPU)
    assert not (tmp_path / "lab.yaml").exists()

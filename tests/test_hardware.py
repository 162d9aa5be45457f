"""The device and precision rules of train, embed and predict (twbyol.hardware)."""

import numpy as np
import pytest
import torch

from tests.test_train import cfg
from twbyol import hardware
from twbyol.train import train

SLURM_GPU_ENV = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")
OLD_DRIVER = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57.02  Tue Jul 13 16:14:05 UTC 2021"
)


@pytest.fixture()
def no_gpu_env(monkeypatch):
    for name in SLURM_GPU_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(
    "env, given",
    [
        ({}, None),
        ({"CUDA_VISIBLE_DEVICES": ""}, None),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, None),
        ({"SLURM_GPUS_ON_NODE": "0"}, None),
        ({"SLURM_JOB_GPUS": "0,1,2,3"}, "SLURM_JOB_GPUS=0,1,2,3"),
        ({"CUDA_VISIBLE_DEVICES": "2"}, "CUDA_VISIBLE_DEVICES=2"),
    ],
)
def test_the_schedulers_gpus_are_read_from_its_variables(env, given):
    assert hardware.gpus_allocated(env) == given


def test_the_driver_version_is_read_from_the_kernel_module(tmp_path):
    version = tmp_path / "version"
    version.write_text(OLD_DRIVER + "\nGCC version: 10\n")
    assert hardware.nvidia_driver(version) == OLD_DRIVER
    assert hardware.nvidia_driver(tmp_path / "absent") is None


def test_gpus_given_but_cuda_unusable_fails_naming_driver_and_build(
    no_gpu_env,
    monkeypatch,
    frames,  # noqa: F811
    tmp_path,
):
    """A job SLURM gave 4 GPUs on a node whose driver is too old for the CUDA build: the run
    fails before any work, naming both, instead of training on the CPU for days."""
    monkeypatch.setenv("SLURM_JOB_GPUS", "0,1,2,3")
    monkeypatch.setattr(hardware, "nvidia_driver", lambda: OLD_DRIVER)
    with pytest.raises(RuntimeError) as err:
        hardware.pick_device()
    assert "470.57.02" in str(err.value) and f"CUDA {torch.version.cuda}" in str(err.value)
    assert "SLURM_JOB_GPUS=0,1,2,3" in str(err.value)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="Not falling back to the CPU"):
        train(cfg(frames, out))
    assert not out.exists()  # nothing written


def test_gpus_given_on_a_node_without_a_driver_run_on_the_cpu_and_say_so(
    no_gpu_env, monkeypatch, capsys
):
    """A test cluster's GPUs are GRES backed by plain files: no NVIDIA driver is loaded."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(hardware, "nvidia_driver", lambda: None)
    assert hardware.pick_device() == torch.device("cpu")
    assert "no NVIDIA driver is loaded" in capsys.readouterr().err


def test_no_gpus_given_runs_on_the_cpu_quietly(no_gpu_env, capsys):
    assert hardware.pick_device() == torch.device("cpu")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "precision, cpu_bf16, device, native, want",
    [
        ("fp32", False, "cuda", True, None),  # the mabe22 recipe: embedded in fp32 too
        ("bf16", False, "cuda", True, torch.bfloat16),
        ("fp16", False, "cuda", True, torch.float16),
        ("bf16", False, "cpu", True, None),  # CPU bf16 only when the run asked for it
        ("bf16", True, "cpu", True, torch.bfloat16),
        ("bf16", True, "cpu", False, None),  # ... and the CPU computes it natively
        ("fp16", True, "cpu", True, None),
    ],
)
def test_autocast_follows_the_runs_precision(
    monkeypatch, precision, cpu_bf16, device, native, want
):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    run = {"precision": precision, "cpu_bf16": cpu_bf16}
    assert hardware.run_autocast(run, torch.device(device)) == want
    with pytest.raises(ValueError, match="precision"):
        hardware.autocast_dtype("fp8", False, torch.device(device))


@pytest.mark.parametrize("cpu_bf16", [False, True])
def test_embed_runs_the_model_in_the_precision_it_was_trained_in(
    monkeypatch,
    frames,  # noqa: F811
    tmp_path,
    cpu_bf16,
):
    """The embed stage's numbers for a run's model are its backbone's under the run's
    autocast (fp32, or bf16 for a cpu_bf16 run), and bf16 ones differ from fp32 ones: so the
    precision is really applied, and GPU and CPU embeddings of an fp32 run agree."""
    from twbyol.embed import embed
    from twbyol.features import embed_clip, load_backbone

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    out = tmp_path / "run"
    train(cfg(frames, out, precision="bf16", cpu_bf16=cpu_bf16, epochs=1))
    emb, proj = tmp_path / "emb.npy", tmp_path / "proj.npz"
    info = embed(str(out / "model.pt"), str(frames), str(frames / "index.tsv"), emb, proj)
    assert info["autocast"] == ("bfloat16" if cpu_bf16 else None)
    backbone, run = load_backbone(out / "model.pt", torch.device("cpu"))
    clip = np.load(frames / "c0.npy")

    def first_clip(autocast):
        return embed_clip(backbone, clip, run["crop"], 4, 64, torch.device("cpu"), autocast)

    want = first_clip(torch.bfloat16 if cpu_bf16 else None)
    got = np.load(emb)[: len(clip)]
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(first_clip(torch.bfloat16), first_clip(None))
    # the input window it embedded with, recorded for the evaluation: crop 4 x 2, stride 4
    assert np.load(proj)["window"].tolist() == [4, 2, 4]

"""NCCL's rules by construction, and ranks that never wait on each other forever.

No GPU here: what NCCL would be handed is checked with the backend simulated (its name
"nccl", the training device `meta`, the collectives recorded); what the ranks do is checked
with two real gloo processes, under a deadline, so a hang fails the test instead of CI.
"""

import ast
import json
import math
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.test_methods import batch
from tests.test_methods import cfg as method_cfg
from tests.test_train import cfg as train_cfg
from twbyol import distributed
from twbyol.methods import build_method

PACKAGE = Path(distributed.__file__).parent


def test_no_module_but_distributed_uses_torch_distributed():
    """Every collective goes through twbyol.distributed: no other module of the package
    imports torch.distributed (or reaches it as torch.distributed.*)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "distributed.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Attribute):
                names = [ast.unparse(node)]
            if any(n == "torch.distributed" or n.startswith("torch.distributed.") for n in names):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


@pytest.fixture()
def nccl(monkeypatch):
    """twbyol.distributed over a simulated 2-rank NCCL group whose training device is `meta`:
    returns the list of (collective, tensors handed, group) it records."""
    handed = []

    def record(name):
        def collective(*args, group=None, **_):
            tensors = []
            for a in args:
                tensors += a if isinstance(a, list) else [a]
            handed.append((name, [t for t in tensors if isinstance(t, torch.Tensor)], group))

        return collective

    d = distributed.dist
    for name in ("all_reduce", "all_gather", "all_gather_object", "barrier"):
        monkeypatch.setattr(d, name, record(name))
    monkeypatch.setattr(d, "new_group", lambda backend: f"{backend} group")
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "backend", lambda: "nccl")
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setitem(distributed._state, "device", torch.device("meta"))
    monkeypatch.setitem(distributed._state, "host_group", None)
    monkeypatch.setattr(distributed, "calls", Counter())
    return handed


def test_device_collectives_hand_nccl_contiguous_tensors_on_the_training_device(nccl):
    """A CPU tensor (what crashed the first epoch's end) and a strided slice (MoCo's keys of
    one crop) each reach the backend on the training device, contiguous, in NCCL's own group;
    so does the gradient's all-reduce of an all-gather with gradient."""
    cpu_float64 = torch.zeros(3, dtype=torch.float64)
    keys = torch.randn(4, 2, 8)[:, 1]  # (B, D) slice of (B, rho, D): not contiguous
    assert not keys.is_contiguous()
    distributed.all_reduce(cpu_float64)
    distributed.all_gather(keys)
    x = torch.empty(8, 4, device="meta").t().requires_grad_()  # strided, on the device
    distributed.all_gather_grad(x).sum().backward()
    names = [n for n, _, _ in nccl]
    assert names == ["all_reduce", "all_gather", "all_gather", "all_reduce"]
    for name, tensors, group in nccl:
        assert group is None, name  # the default (NCCL) group
        for t in tensors:
            assert t.device.type == "meta" and t.is_contiguous(), name
    assert x.grad is not None and x.grad.shape == x.shape


def test_host_collectives_stay_on_the_cpu_in_a_gloo_group(nccl):
    """Host-side values (BYOL's weight sums, the checkpoint's epoch sums, barriers) go over a
    gloo group of the same ranks: CPU tensors NCCL would refuse, no wait for the device."""
    out = distributed.all_reduce_host(torch.tensor([1.0, 2.0]))
    distributed.all_gather_object({"n": 1})
    distributed.barrier()
    assert out.device.type == "cpu"
    assert [(n, g) for n, _, g in nccl] == [
        ("all_reduce", "gloo group"),
        ("all_gather_object", "gloo group"),
        ("barrier", "gloo group"),
    ]
    assert all(t.device.type == "cpu" for _, ts, _ in nccl for t in ts)


def test_without_a_process_group_collectives_are_identities(monkeypatch):
    monkeypatch.setattr(distributed, "calls", Counter())
    x = torch.arange(4.0)
    assert torch.equal(distributed.all_reduce(x), x) and distributed.all_reduce(x) is not x
    assert distributed.all_gather(x) is x and distributed.all_gather_grad(x) is x
    assert distributed.all_gather_object(3) == [3]
    assert distributed.calls.total() == 0


# ---------------------------------------------------------------- two real ranks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ranks(fn, args, world=2, deadline_s=120.0):
    """fn(rank, *args) in `world` spawned processes; fails (killing them) past the deadline:
    a collective one rank skipped hangs the others, and that must fail, not hang."""
    port = _free_port()
    ctx = mp.start_processes(
        fn, args=(world, port, *args), nprocs=world, join=False, start_method="spawn"
    )
    end = time.monotonic() + deadline_s
    while not ctx.join(timeout=1.0):
        if time.monotonic() > end:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"ranks still running after {deadline_s:.0f} s: a collective hangs")


def _join(rank, world, port):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )


def _time_contrast_worker(rank, world, port, out):
    """Rank 0's crops of a clip are near in time (positives), rank 1's far apart (none)."""
    _join(rank, world, port)
    distributed.init(torch.device("cpu"))
    torch.manual_seed(0)
    model = build_method(method_cfg("time_contrast", window=5.0))
    ddp = torch.nn.parallel.DistributedDataParallel(model.online)
    crops, _, _ = batch(b=4)
    centres = torch.tensor([[0.0, 2.0]] * 4) if rank == 0 else torch.tensor([[0.0, 90.0]] * 4)
    results = []
    for _ in range(2):
        loss, stats = model(crops, centres, online=ddp)
        loss.backward()
        grads = [p.grad for p in model.online.parameters() if p.grad is not None]
        results.append(
            {
                "loss": float(loss),
                "positives": float(stats["positives_per_anchor"]),
                "finite": all(bool(torch.isfinite(g).all()) for g in grads),
                "grad_norm": float(torch.cat([g.flatten() for g in grads]).norm()),
            }
        )
    Path(f"{out}.{rank}").write_text(json.dumps({"steps": results, "calls": distributed.calls}))
    distributed.destroy()


def test_time_contrast_without_positives_on_one_rank_takes_the_others_collectives(tmp_path):
    """The rank without a positive pair still runs the backward of the embeddings' all-gather
    (before: `q.sum() * 0` skipped it and the other rank waited forever): both ranks finish
    two steps, issue the same collectives, and hold the same finite, non-zero gradients."""
    out = tmp_path / "tc"
    _run_ranks(_time_contrast_worker, (str(out),))
    r0, r1 = (json.loads(Path(f"{out}.{r}").read_text()) for r in (0, 1))
    assert r0["calls"] == r1["calls"] and r0["calls"]["all_gather_backward"] == 2
    assert [s["positives"] for s in r1["steps"]] == [0.0, 0.0]
    assert all(s["positives"] > 0 for s in r0["steps"]) and r1["steps"][0]["loss"] == 0.0
    for a, b in zip(r0["steps"], r1["steps"]):
        assert a["finite"] and b["finite"] and a["grad_norm"] > 0
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-6)  # DDP: one gradient


def _train_worker(rank, world, port, frames_dir, out_dir, inject, overrides, result):
    """twbyol.train.train on 2 gloo ranks; rank 1 misbehaves in its 3rd step (index 2):
    `nan` (its loss) or `signal` (SIGUSR2 to itself only)."""
    _join(rank, world, port)
    import twbyol.train as tr

    real, taken = tr.train_step, []

    def step(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        taken.append(args[6])  # the step index
        if rank == 1 and len(taken) == 3:
            if inject == "nan":
                loss = loss * float("nan")
            elif inject == "signal":
                os.kill(os.getpid(), signal.SIGUSR2)
        return loss, stats

    tr.train_step = step
    handed = []
    preemption = tr.Preemption(signal.SIGUSR2, then=lambda s, f: handed.append(s)).install()
    got = {"rank": rank}
    try:
        tr.train(train_cfg(Path(frames_dir), Path(out_dir), **overrides), preemption)
        got["end"] = "done"
    except FloatingPointError as e:
        got.update(end="FloatingPointError", message=str(e))
    except SystemExit:
        got.update(end="SystemExit", handed=handed)
    got.update(steps=len(taken), calls=distributed.calls)
    Path(f"{result}.{rank}").write_text(json.dumps(got))
    distributed.destroy()


def _train_on_two_ranks(frames, tmp_path, inject, **overrides):
    out, result = tmp_path / "run", tmp_path / "result"
    args = (str(frames), str(out), inject, overrides, str(result))
    _run_ranks(_train_worker, args)
    return out, [json.loads(Path(f"{result}.{r}").read_text()) for r in (0, 1)]


def test_a_non_finite_loss_on_one_rank_stops_every_rank_with_the_cause(frames, tmp_path):  # noqa: F811
    """Rank 1's loss turns NaN at step 2: both ranks stop at the next sync point (the epoch's
    end, step 3) with the same error naming rank 1 and step 2, rank 0's included (before:
    rank 1 raised alone and rank 0 waited for it until NCCL's timeout); the checkpoint is
    the one before (step 2), never one taken after the NaN."""
    out, (r0, r1) = _train_on_two_ranks(frames, tmp_path, "nan")
    for r in (r0, r1):
        assert r["end"] == "FloatingPointError", r
        assert "non-finite loss (rank 1 at step 2; checked at step 3)" in r["message"]
        assert r["steps"] == 3
    assert r0["calls"] == r1["calls"]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not (out / "model.pt").exists()


def test_a_signal_on_one_rank_stops_every_rank_after_the_same_step(frames, tmp_path):  # noqa: F811
    """SLURM's USR2 reaches rank 1 alone during step 2 (index): both ranks take the same
    collectives, checkpoint at the next sync point (step 3 with sync_every 3) and hand the
    signal on; the requeued run resumes there."""
    out, (r0, r1) = _train_on_two_ranks(frames, tmp_path, "signal", sync_every=3)
    assert r0["end"] == r1["end"] == "SystemExit"
    assert r0["steps"] == r1["steps"] == 3
    assert r0["calls"] == r1["calls"]
    assert r1["handed"] == [signal.SIGUSR2.value]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_binary_weights_on_two_ranks_train_through_skipped_batches(frames, tmp_path):  # noqa: F811
    """Binary weights with a tau below most crops' gaps, so that a rank's own pairs often
    weigh nothing (the batch steps unless the global batch weighs nothing: the decision is
    all-reduced on the host): the ranks finish, having taken the same collectives."""
    out, (r0, r1) = _train_on_two_ranks(
        frames, tmp_path, "none", weighting="binary", tau=3.0, epochs=2
    )
    assert r0["end"] == r1["end"] == "done" and r0["calls"] == r1["calls"]
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(math.isfinite(m["ess"]) for m in lines)

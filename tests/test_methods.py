"""Every method of the study: its loss falls on a fixed batch; DDP equals one process."""

import os
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from twbyol.methods import build_method
from twbyol.methods.contrastive import multi_positive_info_nce


def cfg(method, **kw):
    base = dict(
        method=method,
        backbone=dict(name="tiny", width=8, feature_dim=16),
        weighting="exponential",
        tau=30.0,
        proj_hidden=32,
        proj_dim=16,
        pred_hidden=32,
        normalize="weights",
        temperature=0.0,
        window=30.0,
        seed=0,
    )
    base.update(kw)
    return SimpleNamespace(**base)


def batch(b=8, rho=2, n_tasks=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    crops = torch.randn(b, rho, 1, 4, 16, 16, generator=g)
    centres = torch.rand(b, rho, generator=g) * 60
    targets = (torch.rand(b, rho, n_tasks, generator=g) > 0.5).float()
    targets[0, 0, 0] = float("nan")  # unlabelled frames are masked, not trained on
    return crops, centres, targets


@pytest.mark.parametrize("method", ["byol", "moco_v3", "simclr_v2", "time_contrast", "supervised"])
def test_loss_falls_on_a_fixed_batch(method):
    torch.manual_seed(0)
    model = build_method(
        cfg(method, **({"window": 60.0} if method == "time_contrast" else {})), n_tasks=3
    )
    crops, centres, targets = batch()
    opt = torch.optim.AdamW(model.online.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, _ = model(crops, centres, targets=targets)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_target(0.99)
        losses.append(loss.item())
    assert losses[-1] < losses[0], (method, losses)


def test_info_nce_equals_cross_entropy_for_one_positive():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    k = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    pos = torch.eye(6, dtype=torch.bool)
    valid = torch.ones(6, 6, dtype=torch.bool)
    ce = torch.nn.functional.cross_entropy(q @ k.T / 0.2, torch.arange(6))
    torch.testing.assert_close(multi_positive_info_nce(q, k, pos, valid, 0.2), ce)


def test_time_contrast_positives_respect_the_window():
    model = build_method(cfg("time_contrast", window=10.0))
    crops, _, _ = batch(b=2, rho=3)
    centres = torch.tensor([[0.0, 5.0, 100.0], [0.0, 50.0, 100.0]])
    _, stats = model(crops, centres)
    # clip 0: crops 0-1 are positives of each other; crop 2 and all of clip 1 have none
    assert stats["positives_per_anchor"] == pytest.approx(2 / 6)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, method, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build_method(cfg(method))
    model.eval()  # BN on running statistics: per-rank batch statistics would differ by design
    ddp = torch.nn.parallel.DistributedDataParallel(model.online)
    crops, centres, targets = batch(b=8)
    half = slice(rank * 4, rank * 4 + 4)
    loss, _ = model(crops[half], centres[half], online=ddp, targets=targets[half])
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.online.parameters() if p.grad is not None])
    if rank == 0:
        torch.save(grads, out)
    dist.destroy_process_group()


@pytest.mark.parametrize("method", ["byol", "moco_v3", "simclr_v2"])
def test_two_process_ddp_gradients_equal_one_process_on_the_whole_batch(method, tmp_path):
    torch.manual_seed(0)
    model = build_method(cfg(method))
    model.eval()
    crops, centres, targets = batch(b=8)
    loss, _ = model(crops, centres, targets=targets)
    loss.backward()
    want = torch.cat([p.grad.flatten() for p in model.online.parameters() if p.grad is not None])
    out = tmp_path / "g.pt"
    mp.spawn(_ddp_worker, args=(2, _free_port(), method, str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def _skip_worker(rank, world, port, out):
    """Binary weighting (tau 10) on two ranks: rank 0's pairs all far apart, rank 1's near in
    the first batch; every pair far in the second."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = build_method(cfg("byol", weighting="binary", tau=10.0))
    crops, _, _ = batch(b=4)
    far = torch.tensor([[0.0, 50.0], [0.0, 90.0]])
    mixed = far if rank == 0 else torch.tensor([[0.0, 5.0], [0.0, 90.0]])
    results = []
    for centres in (mixed, far):
        loss, stats = model(crops[rank * 2 : rank * 2 + 2], centres)
        results.append((loss is None, stats["ess"], stats["ess_fraction"]))
    torch.save(results, f"{out}.{rank}")
    dist.destroy_process_group()


def test_ddp_skips_a_batch_only_when_the_global_batch_weighs_nothing(tmp_path):
    """A rank whose own pairs all weigh 0 still steps when another rank's do not (the ranks
    agree, or DDP would hang); the effective sample size is the global batch's."""
    out = tmp_path / "skip"
    mp.spawn(_skip_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    r0, r1 = (torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
    assert r0 == r1  # identical decisions and statistics on both ranks
    (skip_mixed, ess_mixed, frac_mixed), (skip_far, ess_far, _) = r0
    assert not skip_mixed and skip_far
    assert ess_mixed == pytest.approx(2.0) and frac_mixed == pytest.approx(
        2 / 8
    )  # 2 of 8 global pairs
    assert ess_far == 0.0


def _norms(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("method", ["byol", "moco_v3", "simclr_v2"])
def test_ddp_on_gpus_syncs_the_batchnorm_of_online_and_target(method):
    """What DDP on GPUs gets (SyncBatchNorm needs CUDA to run, so only the conversion is run
    here): both networks synced, the target still frozen, the state unchanged; on CPU or in
    one process plain BatchNorm stays."""
    from twbyol.train import sync_batchnorm

    torch.manual_seed(0)
    model = build_method(cfg(method))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for world, device in [(2, "cpu"), (1, "cuda")]:
        sync_batchnorm(model, world, torch.device(device))
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    sync_batchnorm(model, 2, torch.device("cuda"))
    nets = [model.online] + ([model.target] if hasattr(model, "target") else [])
    for net in nets:
        assert _norms(net) and all(isinstance(m, torch.nn.SyncBatchNorm) for m in _norms(net))
    if hasattr(model, "target"):
        assert not any(p.requires_grad for p in model.target.parameters())
    after = model.state_dict()
    assert list(after) == list(state) and all(torch.equal(after[k], v) for k, v in state.items())


@pytest.mark.parametrize("method", ["byol", "moco_v3"])
def test_target_is_an_ema_of_parameters_and_keeps_its_own_bn_statistics(method):
    torch.manual_seed(0)
    model = build_method(cfg(method))
    model.train()
    crops, centres, _ = batch()
    before = [m.running_mean.clone() for m in _norms(model.target)]
    model(crops, centres)  # the target normalises with batch statistics and records them
    assert any(not torch.equal(b, m.running_mean) for b, m in zip(before, _norms(model.target)))
    for m in _norms(model.online):
        m.running_mean.fill_(5.0)
    t_params = [p.clone() for p in model.target.parameters()]
    t_buffers = [b.clone() for b in model.target.buffers()]
    model.update_target(0.75)
    online = [*model.online.backbone.parameters(), *model.online.projector.parameters()]
    for p, t, o in zip(model.target.parameters(), t_params, online):
        torch.testing.assert_close(p, 0.75 * t + 0.25 * o)
    assert all(torch.equal(b, t) for b, t in zip(model.target.buffers(), t_buffers))


@pytest.mark.parametrize("name, dim", [("slow_r50", 2048), ("slowfast_r50", 2048 + 256)])
def test_full_scale_backbones_take_gray_clips(name, dim):
    """pytorchvideo's Slow-R50 / SlowFast-R50 built for one input channel give (B, D) features."""
    from twbyol.models.backbones import build_backbone

    net = build_backbone(name).eval()
    assert net.feature_dim == dim
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv3d))
    assert first_conv.in_channels == 1  # the stem is built for gray input, not replicated RGB
    with torch.no_grad():
        out = net(torch.randn(1, 1, 8, 64, 64))
    assert out.shape == (1, dim) and torch.isfinite(out).all()

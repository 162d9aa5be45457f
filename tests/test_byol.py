"""The method's loss: weights match their formulas, uniform TW-BYOL is plain BYOL, EMA is its
formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from twbyol.methods.byol import (
    BYOL,
    byol_loss,
    ema_momentum,
    ema_update,
    pair_indices,
    same_state,
    temporal_weight,
)
from twbyol.models.backbones import TinyVideoNet, build_backbone

DT = torch.tensor([0, 1, 10, 15, 29, 30, 31, 60, 120, 900])


@pytest.mark.parametrize("tau", [15.0, 30.0, 60.0])
def test_weight_formulas(tau):
    dt = DT.double()
    expected = {
        "exponential": torch.exp(-dt / tau),
        "uniform": torch.ones_like(dt),
        "binary": (dt <= tau).double(),
        "linear": torch.clamp(1 - dt / (2 * tau), min=0),
        "inverse_square": 1 / (1 + (dt / tau) ** 2),
    }
    for kind, want in expected.items():
        got = temporal_weight(DT, kind, tau)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-7, msg=kind)
    # a few by hand: exp(-1) at dt = tau; the binary cut is inclusive
    assert temporal_weight(torch.tensor([tau]), "exponential", tau).item() == pytest.approx(
        math.exp(-1)
    )
    assert temporal_weight(torch.tensor([tau]), "binary", tau).item() == 1.0


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="tau"):
        temporal_weight(DT, "exponential", -1.0)
    with pytest.raises(ValueError, match="unknown kind"):
        temporal_weight(DT, "gaussian", 30.0)


def test_loss_is_normalised_mse():
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    mse = ((F.normalize(p, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()
    torch.testing.assert_close(byol_loss(p, z), mse, rtol=1e-6, atol=1e-6)


def test_uniform_weights_equal_plain_byol():
    g = torch.Generator().manual_seed(1)
    p, z = torch.randn(64, 16, generator=g), torch.randn(64, 16, generator=g)
    plain = byol_loss(p, z)
    for norm in ("weights", "batch"):
        weighted = byol_loss(p, z, temporal_weight(torch.randint(0, 300, (64,)), "uniform"), norm)
        assert abs((weighted - plain).item()) < 1e-6


def test_weighted_mean_and_batch_normalisation():
    p, z = torch.randn(4, 8), torch.randn(4, 8)
    w = torch.tensor([1.0, 0.5, 0.0, 0.25])
    per = 2 - 2 * F.cosine_similarity(p, z)
    torch.testing.assert_close(byol_loss(p, z, w), (w * per).sum() / w.sum())
    torch.testing.assert_close(byol_loss(p, z, w, "batch"), (w * per).mean())
    # all pairs cut off (binary): zero loss, no NaN
    assert byol_loss(p, z, torch.zeros(4)).item() == 0.0


def test_stop_gradient_on_target():
    p, z = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_ema_update_and_schedule():
    a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = a.weight.detach().clone()
    ema_update(a, b, 0.9)
    torch.testing.assert_close(a.weight, 0.9 * before + 0.1 * b.weight)
    assert ema_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert ema_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert ema_momentum(50, 100, 0.996) == pytest.approx(0.998)


def test_pairs_cover_every_ordered_pair():
    i, j = pair_indices(3)
    assert sorted(zip(i.tolist(), j.tolist())) == [
        (a, b) for a in range(3) for b in range(3) if a != b
    ]


def _model(weighting, tau=30.0):
    torch.manual_seed(0)
    return BYOL(TinyVideoNet(width=8, feature_dim=16), weighting, tau, 32, 16, 32)


def test_model_weights_pairs_by_their_own_dt():
    torch.manual_seed(0)
    crops = torch.randn(2, 3, 1, 4, 16, 16)
    centres = torch.tensor([[0.0, 30.0, 90.0], [10.0, 10.0, 400.0]])
    _, stats = _model("exponential")(crops, centres)
    i, j = pair_indices(3)
    dt = (centres[:, i] - centres[:, j]).abs()
    assert stats["mean_dt"] == pytest.approx(dt.mean().item())
    assert stats["mean_weight"] == pytest.approx(torch.exp(-dt / 30).mean().item(), rel=1e-5)


def test_uniform_model_equals_exponential_with_huge_tau():
    crops = torch.randn(2, 2, 1, 4, 16, 16)
    centres = torch.tensor([[0.0, 50.0], [5.0, 200.0]])
    a, _ = _model("uniform")(crops, centres)
    b, _ = _model("exponential", tau=1e12)(crops, centres)
    assert abs(a.item() - b.item()) < 1e-6


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = _model("exponential")
    crops = torch.randn(8, 2, 1, 4, 16, 16)
    centres = torch.tensor([[0.0, 12.0]] * 8)
    opt = torch.optim.AdamW(model.online.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, _ = model(crops, centres)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_target(0.99)
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_same_state_compares_every_label_and_needs_one():
    nan = float("nan")
    a = torch.tensor([[1, 0], [1, 0], [1, nan], [1, nan], [nan, nan], [0, 0]])
    b = torch.tensor([[1, 0], [1, 1], [1, nan], [1, 0], [nan, nan], [0, 0]])
    # equal / one task differs / NaN is a value of its own / NaN vs 0 / no label at all / equal
    assert same_state(a, b).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]


def _batch(b=6, rho=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, rho, 1, 4, 16, 16, generator=g), torch.rand(b, rho, generator=g) * 200


def test_oracle_weights_pairs_by_the_labels_of_their_centre_frames():
    crops, centres = _batch(b=3)
    targets = torch.tensor(
        [
            [[1.0, 0.0], [1.0, 0.0]],  # same state: weight 1
            [[1.0, 0.0], [0.0, 0.0]],  # another state: 0
            [[0.0, 1.0], [0.0, 1.0]],
        ]
    )  # same: 1
    loss, stats = _model("oracle")(crops, centres, targets=targets)
    assert stats["mean_weight"] == pytest.approx(2 / 3)
    assert stats["ess"] == pytest.approx(4.0) and stats["ess_fraction"] == pytest.approx(4 / 6)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="oracle: the batch carries no labels"):
        _model("oracle")(crops, centres)


def test_permuted_control_is_a_seeded_shuffle_of_the_exponential_weights():
    model = _model("permuted", tau=30.0)
    dt = torch.arange(64).float() * 7
    exp = temporal_weight(dt, "exponential", 30.0)
    w = model.pair_weights(dt, None, None, step=5)
    assert torch.equal(w.sort().values, exp.sort().values)  # the same weights ...
    assert not torch.equal(w, exp)  # ... not by their dt
    assert torch.equal(w, model.pair_weights(dt, None, None, step=5))  # deterministic
    assert not torch.equal(w, model.pair_weights(dt, None, None, step=6))  # a new draw each step
    # a batch's weight statistics are the exponential's
    crops, centres = _batch()
    _, a = model(crops, centres, step=3)
    _, b = _model("exponential", tau=30.0)(crops, centres)
    assert a == pytest.approx(b)


def test_effective_sample_size_of_the_batch():
    crops, centres = _batch()
    _, stats = _model("exponential")(crops, centres)
    i, j = pair_indices(2)
    w = torch.exp(-(centres[:, i] - centres[:, j]).abs().flatten() / 30)
    assert stats["ess"] == pytest.approx((w.sum() ** 2 / (w**2).sum()).item(), rel=1e-5)
    assert stats["ess_fraction"] == pytest.approx(stats["ess"] / 12)
    _, stats = _model("uniform")(crops, centres)
    assert stats["ess"] == 12 and stats["ess_fraction"] == 1.0  # every pair counts once


def test_a_batch_whose_pairs_all_weigh_zero_runs_no_network():
    """binary weighting, every pair further apart than tau: loss None, and neither network ran
    (their BatchNorm running statistics are untouched)."""
    model = _model("binary", tau=10.0)
    model.train()
    crops, _ = _batch(b=4)
    far = torch.tensor([[0.0, 50.0], [10.0, 200.0], [100.0, 0.0], [5.0, 700.0]])
    buffers = [b.clone() for b in model.buffers()]
    loss, stats = model(crops, far)
    assert loss is None and stats["mean_weight"] == 0.0 and stats["ess"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    near = far.clone()
    near[0, 1] = 5.0  # one pair within tau: a loss, and only that pair's
    loss, stats = model(crops, near)
    assert loss is not None and stats["ess"] == pytest.approx(2.0)  # its two ordered pairs


def test_batch_normalisation_is_the_study_texts_mean_of_weighted_losses():
    """normalize: batch (the seed's `(w * l).mean()`) = the weighted mean x mean(w)."""
    crops, centres = _batch()
    a, stats = _model("exponential")(crops, centres)
    model = _model("exponential")
    model.normalize = "batch"
    b, _ = model(crops, centres)
    assert b.item() == pytest.approx(a.item() * stats["mean_weight"], rel=1e-5)


def test_online_network_normalises_each_crop_index_on_its_own():
    """rho-BYOL's online network: a pass per crop index, so BN normalises each view's B crops
    on their own; the target batches every crop (one BN batch of rho * B)."""
    from twbyol.methods.byol import OnlineNetwork

    torch.manual_seed(0)
    net = OnlineNetwork.byol(build_backbone("tiny", width=8, feature_dim=16), 32, 8, 32).train()
    crops = torch.randn(6, 2, 1, 4, 16, 16)
    z, p = net(crops)
    assert z.shape == (6, 2, 8) and p.shape == (6, 2, 8)
    for k in range(2):
        zk, pk = net(crops[:, k])
        assert torch.allclose(z[:, k], zk, atol=1e-6) and torch.allclose(p[:, k], pk, atol=1e-6)
    z_all, _ = net(crops.flatten(0, 1))  # one batch of 12: other BN statistics
    assert (z - z_all.view(6, 2, -1)).abs().max() > 1e-3

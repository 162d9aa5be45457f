"""The method's loss: weights match their formulas, uniform TW-BYOL is plain BYOL, EMA is its formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from twbyol.methods.byol import BYOL, byol_loss, ema_momentum, ema_update, pair_indices, temporal_weight
from twbyol.models.backbones import TinyVideoNet

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
    assert temporal_weight(torch.tensor([tau]), "exponential", tau).item() == pytest.approx(math.exp(-1))
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
    assert sorted(zip(i.tolist(), j.tolist())) == [(a, b) for a in range(3) for b in range(3) if a != b]


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

"""Optimiser and schedule (twbyol.optim) against the formulas of rho-BYOL's SlowFast recipe."""

import math

import numpy as np
import pytest
import torch

from twbyol.optim import LARS, cosine_schedule, param_groups


def slowfast_lr(
    epoch: float,
    base: float,
    start: float,
    end: float,
    warmup: float,
    max_epoch: float,
    cosine_after_warmup: bool,
) -> float:
    """slowfast/utils/lr_policy.py get_lr_at_epoch with LR_POLICY cosine, evaluated directly."""

    def cos_lr(e: float) -> float:
        offset = warmup if cosine_after_warmup else 0.0
        return (
            end
            + (base - end) * (math.cos(math.pi * (e - offset) / (max_epoch - offset)) + 1.0) * 0.5
        )

    if epoch < warmup:
        return epoch * (cos_lr(warmup) - start) / warmup + start
    return cos_lr(epoch)


@pytest.mark.parametrize("epochs, warmup, steps_per_epoch", [(200, 35, 10), (50, 8.75, 8)])
@pytest.mark.parametrize("after", [False, True])
def test_schedule_is_slowfast_cosine_with_warmup(epochs, warmup, steps_per_epoch, after):
    total, w = epochs * steps_per_epoch, int(warmup * steps_per_epoch)
    ours = cosine_schedule(0.6, 0.0, total, w, 0.001, cosine_after_warmup=after)
    want = [
        slowfast_lr(t / steps_per_epoch, 0.6, 0.001, 0.0, warmup, epochs, after)
        for t in range(total)
    ]
    np.testing.assert_allclose(ours, want, rtol=1e-12, atol=1e-15)
    assert ours[0] == pytest.approx(0.001)
    if after:  # warm-up to the peak, then the cosine
        assert ours.argmax() == w and ours.max() == pytest.approx(0.6)
    else:  # one cosine over the whole run: the warm-up ends on it, below the peak
        peak = 0.6 * (math.cos(math.pi * warmup / epochs) + 1) / 2
        assert ours.argmax() == w and ours.max() == pytest.approx(peak) and peak < 0.56


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def _set_grads(net, seed):
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=g)


@pytest.mark.parametrize("nesterov", [True, False])
def test_lars_steps_equal_the_recipe_by_hand(nesterov):
    """Two steps of the recipe's update in float64: the trust ratio 0.001 ||w|| / (||g|| +
    wd ||w|| + eps) on g + wd w for the weight; the bias and BN parameters plain momentum."""
    # a decay large enough that the denominator ||g|| + wd ||w|| differs from ||g + wd w|| (BYOL's)
    lr, m, wd, eta, eps = 0.6, 0.9, 0.05, 1e-3, 1e-8
    net = _net()
    opt = LARS(param_groups(net, wd), lr=lr, momentum=m, weight_decay=wd, nesterov=nesterov)
    params = [p.detach().double().clone() for p in net.parameters()]
    bufs = [None] * len(params)
    for step in range(2):
        _set_grads(net, step)
        grads = [p.grad.double() for p in net.parameters()]
        for k, (w, g) in enumerate(zip(params, grads)):
            if w.ndim > 1:
                g = eta * w.norm() / (g.norm() + wd * w.norm() + eps) * (g + wd * w)
            bufs[k] = g.clone() if bufs[k] is None else m * bufs[k] + g
            params[k] = w - lr * (g + m * bufs[k] if nesterov else bufs[k])
        opt.step()
        for p, want in zip(net.parameters(), params):
            torch.testing.assert_close(p.detach().double(), want, rtol=1e-6, atol=1e-9)


def test_lars_without_trust_and_decay_is_torch_nesterov_sgd():
    a, b = _net(), _net()
    ours = LARS([dict(params=list(a.parameters()), lars_exclude=True)], lr=0.1, nesterov=True)
    torch_sgd = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    for step in range(3):
        _set_grads(a, step)
        _set_grads(b, step)
        ours.step()
        torch_sgd.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


def test_lars_leaves_the_gradient_of_a_zero_weight_unscaled():
    w = torch.nn.Parameter(torch.zeros(2, 2))
    w.grad = torch.full((2, 2), 3.0)
    LARS([w], lr=0.5, momentum=0.9, weight_decay=0.1).step()
    torch.testing.assert_close(w.detach(), torch.full((2, 2), -1.5))  # -lr * g: no trust, no decay


@pytest.mark.parametrize("nesterov", [True, False])
def test_multi_tensor_lars_step_is_the_parameter_by_parameter_update(nesterov):
    """`step_foreach` (multi-tensor kernels, the GPU's) against `step_reference` (the loop,
    the CPU's) over three steps: a zero
    weight, a parameter without a gradient on one step, both groups."""
    a, b = _net(), _net()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        next(a.parameters())[0].zero_()  # a zero row is not a zero weight: zero one weight
        zero = [p for p in a.parameters() if p.ndim > 1][-1]
        zero.zero_()
        [p for p in b.parameters() if p.ndim > 1][-1].zero_()
        next(b.parameters())[0].zero_()
    kw = dict(lr=0.3, momentum=0.9, weight_decay=0.05, nesterov=nesterov)
    fast, ref = LARS(param_groups(a, 0.05), **kw), LARS(param_groups(b, 0.05), **kw)
    for step in range(3):
        _set_grads(a, step)
        _set_grads(b, step)
        if step == 1:  # one parameter untouched this step
            list(a.parameters())[1].grad = None
            list(b.parameters())[1].grad = None
        fast.step_foreach()
        ref.step_reference()
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)

"""Training loop: artifacts, determinism, the resume drill, and clear failures."""

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from twbyol.train import TrainConfig, train


def cfg(frames, out, **kw):
    base = dict(
        run_id="tw",
        seed=0,
        out_dir=str(out),
        frames_dir=str(frames),
        index=str(frames / "index.tsv"),
        method="byol",
        weighting="exponential",
        tau=30.0,
        crop=dict(rho=2, num_frames=4, stride=2, crop_size=16, min_scale=0.5),
        backbone=dict(name="tiny", width=8, feature_dim=16),
        proj_hidden=32,
        proj_dim=16,
        pred_hidden=32,
        epochs=3,
        samples_per_epoch=24,
        batch_size=8,
        optimizer="adamw",
        lr=0.05,
        weight_decay=0.0,
        warmup_epochs=1,
        ema_base=0.99,
        num_workers=0,
        checkpoint_every=2,
    )
    base.update(kw)
    return TrainConfig.from_dict(base)


def metrics(out):
    return [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]


def test_run_writes_its_artifacts(frames, tmp_path, capsys):
    out = tmp_path / "run"
    train(cfg(frames, out))
    lines = metrics(out)
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    assert all(m["run_id"] == "tw" and np.isfinite(m["loss"]) for m in lines)
    assert 0 < lines[0]["mean_weight"] < 1  # exponential weights of real dt
    assert all(
        0 < m["ess_fraction"] < 1
        and m["ess"] == pytest.approx(16 * m["ess_fraction"])
        and m["skipped_steps"] == 0
        for m in lines
    )  # 16 ordered pairs a batch of 8
    printed = [json.loads(s) for s in capsys.readouterr().out.splitlines() if s.startswith("{")]
    assert printed == lines  # one JSON line per epoch on stdout
    model = torch.load(out / "model.pt", weights_only=True)
    assert model["feature_dim"] == 16 and model["config"]["run_id"] == "tw"
    eff = json.loads((out / "efficiency.json").read_text())
    assert eff["samples"] == 3 * 24 and eff["samples_per_s"] > 0 and eff["peak_mem_mb"] > 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_cpu_bf16_autocasts_only_where_the_cpu_has_native_bf16(frames, tmp_path, capsys):
    """precision bf16 alone trains in fp32 on a CPU; with cpu_bf16 it autocasts where the
    CPU computes bf16 natively, says so in efficiency.json, and still trains; elsewhere it
    falls back to fp32 with a message."""
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    train(cfg(frames, fp32, precision="bf16"))
    train(cfg(frames, bf16, precision="bf16", cpu_bf16=True))
    eff = {
        k: json.loads((d / "efficiency.json").read_text())
        for k, d in (("fp32", fp32), ("bf16", bf16))
    }
    assert eff["fp32"]["autocast"] is None
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert eff["bf16"]["autocast"] == "bfloat16"
        a, b = metrics(fp32), metrics(bf16)
        assert all(np.isfinite(m["loss"]) for m in b) and b[-1]["loss"] < b[0]["loss"]
        assert [m["loss"] for m in a] != [m["loss"] for m in b]  # really another precision
    else:
        assert eff["bf16"]["autocast"] is None
        assert "this CPU has no native bf16" in capsys.readouterr().err


def test_same_seed_same_metrics(frames, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(cfg(frames, a))
    train(cfg(frames, b))
    strip = lambda ms: [{k: v for k, v in m.items() if k != "wall_s"} for m in ms]  # noqa: E731
    assert strip(metrics(a)) == strip(metrics(b))


def test_recipe_optimiser_follows_slowfast_schedule_scaled_to_the_batch(frames, tmp_path):
    """rho-BYOL's settings (LARS with Nesterov momentum, lr and warm-up start per 256 samples,
    the cosine over the whole run): the logged lr is SlowFast's lr_policy at the fractional
    epoch, both lrs scaled by batch / 256, and the run trains."""
    from tests.test_optim import slowfast_lr

    out = tmp_path / "recipe"
    train(
        cfg(
            frames,
            out,
            optimizer="lars",
            lr=2.4,
            warmup_start_lr=0.004,
            cosine_after_warmup=False,
            lars_nesterov=True,
            lars_momentum=0.9,
            weight_decay=1e-6,
            warmup_epochs=1.5,
            epochs=4,
            samples_per_epoch=16,
            crop=dict(
                rho=2,
                num_frames=4,
                stride=2,
                crop_size=16,
                min_scale=0.2,
                max_scale=0.766,
                aspect_ratio=[0.75, 1.3333],
                photometric_first=True,
                brightness=0.6,
                contrast=0.6,
            ),
        )
    )
    lines, scale, steps_per_epoch = metrics(out), 8 / 256, 2
    assert all(np.isfinite(m["loss"]) for m in lines)
    for m in lines:  # an epoch's line logs the lr of its last step
        epoch = (m["step"] - 1) / steps_per_epoch
        assert m["lr"] == pytest.approx(
            slowfast_lr(epoch, 2.4 * scale, 0.004 * scale, 0.0, 1.5, 4, False)
        )


def test_loss_scale_moves_the_parameters_lars_leaves_unadapted_and_not_the_others(frames, tmp_path):
    """rho-BYOL's summed loss (loss_scale = rho): one LARS step moves BN and biases (plain SGD
    momentum) twice as far at loss_scale 2, and the LARS-adapted weights as far as before."""
    deltas = {}
    init = torch.load(
        _one_step(frames, tmp_path / "init", epochs=1, samples_per_epoch=8, method="random_init"),
        weights_only=True,
    )["backbone"]
    for scale in (1.0, 2.0):
        path = _one_step(frames, tmp_path / f"s{scale}", loss_scale=scale)
        trained = torch.load(path, weights_only=True)["backbone"]
        deltas[scale] = {
            k: (trained[k].float() - init[k].float()) for k in init if init[k].is_floating_point()
        }
    one_d = [
        k
        for k, v in deltas[1.0].items()
        if v.ndim == 1 and "running" not in k and v.abs().sum() > 0
    ]
    weights = [k for k, v in deltas[1.0].items() if v.ndim > 1]
    assert one_d and weights
    for k in one_d:
        torch.testing.assert_close(deltas[2.0][k], 2 * deltas[1.0][k], rtol=1e-3, atol=1e-6)
    for k in weights:  # relative to the step itself, which LARS keeps small
        d1, d2 = deltas[1.0][k], deltas[2.0][k]
        assert d1.norm() > 0 and (d2 - d1).norm() / d1.norm() < 1e-3, k


def _one_step(frames, out, **kw):
    args = dict(
        optimizer="lars",
        lr=2.4,
        weight_decay=0.0,
        warmup_epochs=0,
        epochs=1,
        samples_per_epoch=8,
        lars_nesterov=True,
        weighting="uniform",
    )
    train(cfg(frames, out, **{**args, **kw}))
    return out / "model.pt"


class Interrupt(Exception):
    pass


def _killed_at_step_7(frames, out, monkeypatch, **kw):
    """A run of cfg(**kw) killed at step 7 (after its step-6 checkpoint)."""
    import twbyol.train as tr

    real = tr.ema_momentum
    calls = {"n": 0}

    def dying(step, total, base):
        calls["n"] += 1
        if calls["n"] == 7:
            raise Interrupt
        return real(step, total, base)

    monkeypatch.setattr(tr, "ema_momentum", dying)
    with pytest.raises(Interrupt):
        train(cfg(frames, out, **kw))
    monkeypatch.setattr(tr, "ema_momentum", real)
    assert (out / "checkpoint.pt").exists() and not (out / "model.pt").exists()


def test_resume_after_interruption_equals_uninterrupted_run(frames, tmp_path, monkeypatch):
    """The drill: kill a run mid-epoch, rerun it: it resumes from checkpoint.pt and ends with
    exactly the uninterrupted run's metrics and weights (deterministic CPU settings)."""
    ref = tmp_path / "ref"
    train(cfg(frames, ref))

    out = tmp_path / "cut"
    _killed_at_step_7(frames, out, monkeypatch)  # after the step-6 checkpoint, mid epoch 3
    train(cfg(frames, out))

    strip = lambda ms: [{k: v for k, v in m.items() if k != "wall_s"} for m in ms]  # noqa: E731
    assert strip(metrics(out)) == strip(metrics(ref))
    a, b = _backbone(ref), _backbone(out)
    assert all(torch.equal(a[k], b[k]) for k in a)


def _backbone(out):
    return torch.load(out / "model.pt", weights_only=True)["backbone"]


def test_a_checkpoint_of_another_config_is_set_aside_and_the_run_starts_anew(
    frames, tmp_path, monkeypatch, capsys
):
    """Killed at tau 30, rerun at tau 15: the run does not resume the tau-30 weights; it
    keeps the old checkpoint aside, says why, and ends as a fresh tau-15 run."""
    fresh = tmp_path / "fresh"
    train(cfg(frames, fresh, tau=15.0))
    out = tmp_path / "edited"
    _killed_at_step_7(frames, out, monkeypatch, tau=30.0)
    capsys.readouterr()
    train(cfg(frames, out, tau=15.0))
    err = capsys.readouterr().err
    assert "not resuming" in err and "tau 30.0 -> 15.0" in err and "resumed from" not in err
    aside = list(out.glob("checkpoint.*.set-aside.pt"))
    assert len(aside) == 1 and aside[0].name in err
    assert torch.load(aside[0], weights_only=True)["step"] == 6  # the old run's, kept whole
    a, b = _backbone(fresh), _backbone(out)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [m["step"] for m in metrics(out)] == [m["step"] for m in metrics(fresh)]


def test_a_checkpoint_resumes_across_write_settings_not_across_code_unless_told(
    frames, tmp_path, monkeypatch, capsys
):
    import twbyol.train as tr

    # where and how often it writes may change: it resumes
    out = tmp_path / "settings"
    _killed_at_step_7(frames, out, monkeypatch)
    capsys.readouterr()
    train(cfg(frames, out, checkpoint_every=3, log_every=5))
    assert "resumed from" in capsys.readouterr().err

    # other training code (its digest): set aside, unless training.resume_any_code
    for allow in (False, True):
        out = tmp_path / f"code{allow}"
        _killed_at_step_7(frames, out, monkeypatch)
        monkeypatch.setattr(tr, "code_digest", lambda c: "0123456789abcdef")
        capsys.readouterr()
        train(cfg(frames, out, resume_any_code=allow))
        monkeypatch.undo()
        err = capsys.readouterr().err
        if allow:
            assert "resumed from" in err and "running 0123456789abcdef" in err
            assert not list(out.glob("*.set-aside.pt"))
        else:
            assert "other training code" in err and "resume_any_code" in err
            assert len(list(out.glob("*.set-aside.pt"))) == 1


def test_the_code_digest_follows_the_methods_own_files(tmp_path, monkeypatch):
    import twbyol.train as tr

    c = cfg(tmp_path, tmp_path)
    d = tr.code_digest(c)
    assert len(d) == 16 and d == tr.code_digest(c)
    assert tr.code_digest(cfg(tmp_path, tmp_path, method="moco_v3", weighting="uniform")) != d
    real = Path.read_bytes
    monkeypatch.setattr(
        Path, "read_bytes", lambda p: real(p) + (b"#" if p.name == "byol.py" else b"")
    )
    assert tr.code_digest(c) != d


@pytest.mark.parametrize("sync_every, honoured_at", [(1, 5), (10, 6)])
def test_a_signal_mid_step_checkpoints_at_the_next_sync_point_and_the_run_resumes_there(
    frames, tmp_path, monkeypatch, capsys, sync_every, honoured_at
):
    """The scheduler's checkpoint signal (SLURM's USR2 via submitit) arrives during step 5 of 9,
    mid-epoch and between periodic checkpoints: the steps run on to the next sync point (step 5
    itself when every step is one; else the periodic checkpoint at 6), checkpoint.pt holds that
    step, the replaced handler gets the signal, and the rerun resumes there and ends with
    exactly the uninterrupted run's metrics (the epoch's partial sums travel in the checkpoint)
    and weights: the preemption cost no step."""
    import signal

    import twbyol.train as tr

    ref = tmp_path / "ref"
    train(cfg(frames, ref))

    real, calls = tr.train_step, {"n": 0}

    def signalled(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        if calls["n"] == 5:  # mid step 5: after its update, before the loop sees it
            os.kill(os.getpid(), signal.SIGUSR2)
        return out

    handed = []
    previous = signal.getsignal(signal.SIGUSR2)
    monkeypatch.setattr(tr, "train_step", signalled)
    out = tmp_path / "cut"
    try:
        preemption = tr.Preemption(signal.SIGUSR2, then=lambda s, f: handed.append(s)).install()
        with pytest.raises(SystemExit):
            train(cfg(frames, out, sync_every=sync_every), preemption=preemption)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert handed == [signal.SIGUSR2] and calls["n"] == honoured_at
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == honoured_at
    assert f"checkpointed at step {honoured_at} on SIGUSR2" in capsys.readouterr().err
    monkeypatch.setattr(tr, "train_step", real)
    train(cfg(frames, out, sync_every=sync_every))
    err = capsys.readouterr().err
    assert f"resumed from {out / 'checkpoint.pt'} at step {honoured_at}/9" in err

    strip = lambda ms: [{k: v for k, v in m.items() if k != "wall_s"} for m in ms]  # noqa: E731
    assert strip(metrics(out)) == strip(metrics(ref))
    a = torch.load(ref / "model.pt", weights_only=True)["backbone"]
    b = torch.load(out / "model.pt", weights_only=True)["backbone"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_random_init_is_the_untrained_initialisation(frames, tmp_path):
    """The control's network is the one pretraining starts from: its weights equal those of
    a BYOL run of the same seed that cannot move them (lr 0), differ from another seed's,
    and no step is taken."""
    ri = tmp_path / "ri"
    train(cfg(frames, ri, method="random_init"))
    still = tmp_path / "lr0"
    train(cfg(frames, still, weighting="uniform", lr=0.0, weight_decay=0.0, warmup_epochs=0))
    other = tmp_path / "ri1"
    train(cfg(frames, other, method="random_init", seed=1))
    a, b, c = (_backbone(p) for p in (ri, still, other))
    weights = [k for k in a if not k.endswith(("running_mean", "running_var", "batches_tracked"))]
    assert weights and all(torch.equal(a[k], b[k]) for k in weights)
    assert not all(torch.equal(a[k], c[k]) for k in weights)
    assert [(m["step"], m["samples"]) for m in metrics(ri)] == [(0, 0)]
    assert json.loads((ri / "efficiency.json").read_text())["samples"] == 0


def test_non_finite_loss_stops_with_a_clear_error(frames, tmp_path, monkeypatch):
    import twbyol.methods.byol as byol

    real = byol.byol_loss
    monkeypatch.setattr(byol, "byol_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    # read at the first sync point (the periodic checkpoint at step 2), before it is written
    with pytest.raises(FloatingPointError, match=r"non-finite loss \(rank 0 at step 0; checked"):
        train(cfg(frames, tmp_path / "nan"))
    assert not (tmp_path / "nan" / "model.pt").exists()
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()


def test_bad_config_names_the_key(frames, tmp_path):
    with pytest.raises(ValueError, match="method"):
        cfg(frames, tmp_path, method="swav")
    with pytest.raises(ValueError, match="run_id"):
        cfg(frames, tmp_path, run_id="../escape")
    with pytest.raises(ValueError, match="unknown keys"):
        cfg(frames, tmp_path, learning_rate=1.0)


def test_rerun_after_the_last_step_rewrites_every_artifact(frames, tmp_path):
    """Killed after its final checkpoint, outputs deleted as incomplete: the rerun restores
    them all from checkpoint.pt without training again."""
    out = tmp_path / "run"
    train(cfg(frames, out))
    want = metrics(out)
    for name in ("metrics.jsonl", "model.pt", "efficiency.json"):
        (out / name).unlink()
    train(cfg(frames, out))
    assert metrics(out) == want
    assert (out / "model.pt").exists() and (out / "efficiency.json").exists()


# ---------------------------------------------------------------- the controls and the skip


@pytest.fixture()
def labelled(frames):
    """`frames` with labels.npz and a derived protocol: two binary tasks (states of 20 and 7
    frames), clips c0..c5 split 4 SubmissionTrain / 2 test."""
    from twbyol.split import derived_protocol, write_protocol

    clips, n = [f"c{i}" for i in range(6)], 120
    f = np.arange(n)
    one = np.stack([(f // 20) % 2, (f // 7) % 3 == 0]).astype(np.float32)
    np.savez(
        frames / "labels.npz",
        tasks=np.array(["slow", "fast"]),
        task_types=np.array(["Discrete"] * 2),
        sequence_level=np.zeros(2, bool),
        label_array=np.tile(one, (1, 6)),
        clips=np.array(clips),
        starts=np.arange(6) * n,
        ends=np.arange(1, 7) * n,
    )
    protocol = derived_protocol(clips, ["slow", "fast"], [], 42)
    write_protocol(frames / "protocol.json", protocol)
    return dict(labels=str(frames / "labels.npz"), protocol=str(frames / "protocol.json")), protocol


@pytest.mark.parametrize("policy", ["uniform", "near_pairs"])
def test_oracle_learns_only_on_the_supervised_runs_clips(
    frames, labelled, tmp_path, capsys, policy
):
    """The oracle pretrains on the SubmissionTrain clips with their labels, as the upper bound:
    weighted by same state (uniform crops) or drawn by it (near_pairs, uniform loss weights)."""
    paths, protocol = labelled
    out = tmp_path / policy
    train(
        cfg(
            frames,
            out,
            weighting="oracle",
            **paths,
            crop=dict(rho=2, num_frames=4, stride=2, crop_size=16, min_scale=0.5, policy=policy),
        )
    )
    assert "tw seed 0: 4 clips" in capsys.readouterr().err
    assert len(protocol.split_of("slow")["SubmissionTrain"]) == 4
    lines = metrics(out)
    assert all(np.isfinite(m["loss"]) for m in lines if m["loss"] is not None)
    if policy == "uniform":
        assert 0 < np.mean([m["mean_weight"] for m in lines]) < 1
    else:  # every drawn pair shares its state: loss weights 1, the full batch
        assert all(m["mean_weight"] == 1.0 and m["ess_fraction"] == 1.0 for m in lines)
    with pytest.raises(ValueError, match="labels"):
        cfg(frames, out, weighting="oracle")


def test_near_pairs_draw_near_crops_and_weigh_them_uniformly(frames, tmp_path):
    """Same seed, same tau: TW-BYOL weighs uniform crops by w(dt); near_pairs draws the crops
    by it instead and weighs every pair 1 (the full effective batch)."""
    weighted, drawn = tmp_path / "w", tmp_path / "d"
    train(cfg(frames, weighted, tau=10.0))
    train(
        cfg(
            frames,
            drawn,
            tau=10.0,
            crop=dict(
                rho=2, num_frames=4, stride=2, crop_size=16, min_scale=0.5, policy="near_pairs"
            ),
        )
    )
    a, b = metrics(weighted), metrics(drawn)
    assert all(m["mean_weight"] < 0.5 and m["ess_fraction"] < 0.5 for m in a)
    assert all(m["mean_weight"] == 1.0 and m["ess_fraction"] == 1.0 for m in b)
    assert np.mean([m["mean_dt"] for m in b]) < 0.5 * np.mean([m["mean_dt"] for m in a])
    assert torch.load(drawn / "model.pt", weights_only=True)["config"]["weighting"] == "exponential"
    with pytest.raises(ValueError, match="crop_policy"):
        cfg(frames, drawn, method="moco_v3", weighting="uniform", crop=dict(policy="near_pairs"))


def test_batch_normalisation_of_the_study_text_trains(frames, tmp_path):
    """normalize: batch (the seed's literal `(w * l).mean()`) runs and trains."""
    out = tmp_path / "batch"
    train(cfg(frames, out, normalize="batch", epochs=4))
    lines = metrics(out)
    assert all(np.isfinite(m["loss"]) for m in lines) and lines[-1]["loss"] < lines[0]["loss"]
    assert torch.load(out / "model.pt", weights_only=True)["config"]["normalize"] == "batch"


def test_a_run_whose_batches_all_weigh_nothing_skips_and_counts_every_step(frames, tmp_path):
    """binary tau = 1 with min_gap crops 30 frames apart: every pair weighs 0. Every step is
    skipped and counted, the schedule still advances by step index, and the weights are the
    initialisation's."""
    out, init = tmp_path / "zero", tmp_path / "init"
    train(
        cfg(
            frames,
            out,
            weighting="binary",
            tau=1.0,
            crop=dict(
                rho=2, num_frames=4, stride=2, crop_size=16, min_scale=0.5, policy="min_gap", gap=30
            ),
        )
    )
    lines = metrics(out)
    assert [m["skipped_steps"] for m in lines] == [3, 3, 3] and [m["step"] for m in lines] == [
        3,
        6,
        9,
    ]
    assert all(m["loss"] is None and m["ess"] == 0.0 and m["mean_weight"] == 0.0 for m in lines)
    ref = metrics(_run(frames, tmp_path / "ref"))
    assert [m["lr"] for m in lines] == [m["lr"] for m in ref]
    train(cfg(frames, init, method="random_init"))
    a = torch.load(out / "model.pt", weights_only=True)["backbone"]
    b = torch.load(init / "model.pt", weights_only=True)["backbone"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _run(frames, out, **kw):
    train(cfg(frames, out, **kw))
    return out


@pytest.mark.parametrize("optimizer", ["adamw", "lars"])
def test_a_zero_weight_batch_changes_nothing(frames, tmp_path, optimizer):
    """After a real step (so the optimiser has momentum) a batch whose pairs all weigh 0
    leaves the online and target weights, BN statistics, optimiser state and loss scaler as
    they were; the same optimiser stepping on that batch's zero gradient would move them."""
    from twbyol.optim import build_optimizer
    from twbyol.train import build_model, train_step

    c = cfg(
        frames,
        tmp_path,
        weighting="binary",
        tau=10.0,
        optimizer=optimizer,
        weight_decay=0.1,
        lars_momentum=0.9,
    )
    model = build_model(c)
    model.train()
    opt = build_optimizer(model.online, optimizer, 0.01, 0.1, 0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)  # enabled: its state could move
    amp = {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": False}
    crops = torch.randn(4, 2, 1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    near = torch.tensor([[0.0, 4.0], [10.0, 12.0], [50.0, 45.0], [0.0, 8.0]])
    far = torch.tensor([[0.0, 40.0], [10.0, 90.0], [50.0, 0.0], [0.0, 80.0]])
    no_labels = torch.zeros(4, 2, 0)
    loss, _ = train_step(
        c, model, model.online, opt, scaler, [crops, near, no_labels], 0, 0.01, 0.99, amp
    )
    assert loss is not None

    def state():
        return (
            {k: v.clone() for k, v in model.state_dict().items()},
            copy.deepcopy(opt.state_dict()),
            copy.deepcopy(scaler.state_dict()),
        )

    before = state()
    loss, stats = train_step(
        c, model, model.online, opt, scaler, [crops, far, no_labels], 1, 0.01, 0.99, amp
    )
    assert loss is None and stats["mean_weight"] == 0.0
    after = state()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    assert _same(before[1], after[1]) and before[2] == after[2]
    # the bug the skip avoids: a step on the zero gradient still moves the weights
    for p in model.online.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    moved = {k: v for k, v in model.state_dict().items() if k.startswith("online.")}
    assert any(not torch.equal(before[0][k], v) for k, v in moved.items())


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_channels_last_trains_the_same_network_and_its_model_loads_anywhere(frames, tmp_path):
    """channels_last (auto: on, on a CPU) only changes the memory layout of the 3D convolutions:
    the run's losses agree with a contiguous run's to float rounding, and its model.pt loads into
    a contiguous backbone that embeds exactly as the channels-last one does."""
    from twbyol.features import load_backbone
    from twbyol.models.backbones import build_backbone, channels_last_wanted

    assert channels_last_wanted("auto", torch.device("cpu"))
    assert not channels_last_wanted("auto", torch.device("cuda"))
    with pytest.raises(ValueError, match="training.channels_last"):
        channels_last_wanted("on", torch.device("cpu"))
    train(cfg(frames, tmp_path / "cl", channels_last="auto"))
    train(cfg(frames, tmp_path / "contig", channels_last=False))
    a, b = metrics(tmp_path / "cl"), metrics(tmp_path / "contig")
    assert [m["loss"] for m in a] == pytest.approx([m["loss"] for m in b], rel=1e-4)
    fast, run = load_backbone(tmp_path / "cl" / "model.pt", torch.device("cpu"))
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)  # embeds so on CPU
    plain = build_backbone(**run["backbone"]).eval()
    plain.load_state_dict(fast.state_dict())
    assert next(plain.parameters()).is_contiguous()
    x = torch.rand(3, 1, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)


def test_the_cpu_allocator_setting_applies_here():
    """train, embed and predict tune glibc's malloc on a CPU (keep_large_allocations: our
    step 0.96-0.98x pytorchvideo's with it, 1.03-1.05x without): on this Debian machine and
    CI's the libc is found and both settings are accepted (glibc refuses an mmap threshold
    above 32 MiB, which would turn the call into a silent no-op)."""
    from twbyol.allocator import keep_large_allocations

    assert keep_large_allocations() is True


@pytest.mark.parametrize(
    "method, weighting, optimizer, foreach",
    [
        ("byol", "exponential", "lars", True),
        ("byol", "binary", "lars", False),
        ("byol", "permuted", "adamw", None),
        ("moco_v3", "uniform", "lars", True),
        ("simclr_v2", "uniform", "lars", True),
        ("time_contrast", "uniform", "adamw", None),
    ],
)
def test_steps_between_sync_points_never_wait_for_the_device(
    frames, tmp_path, method, weighting, optimizer, foreach
):
    """On the `meta` device every read of a device value raises (it holds no data), as every
    data-dependent op (a boolean mask, `.item()`, an `if` on a tensor) would wait for a GPU:
    the loop's steps run there (the batch's copy and augmentation on the device, forward,
    backward, LARS in both forms or AdamW, EMA, the running sums, the non-finite flag), and
    only the sync point reads the device."""
    from twbyol.data.sampling import TemporalCropDataset
    from twbyol.optim import build_optimizer
    from twbyol.train import _Run, build_model, crop_config, load_clips, train_one_epoch

    c = cfg(
        frames,
        tmp_path,
        method=method,
        weighting=weighting,
        optimizer=optimizer,
        tau=10.0,
        checkpoint_every=0,
        sync_every=0,
    )
    clips, fps = load_clips(c)
    data = TemporalCropDataset(
        c.frames_dir, clips, crop_config(c), 24, 0, None, fps=fps, augment_on="device"
    )
    batches = [
        torch.utils.data.default_collate([data[(0, k)] for k in range(b * 4, b * 4 + 4)])
        for b in range(3)
    ]
    meta = torch.device("meta")
    model = build_model(c).to(meta)
    run = _Run(
        c,
        model,
        model.online,
        build_optimizer(model.online, optimizer, 0.01, 0.1, 0.9, foreach=foreach),
        torch.amp.GradScaler("cpu", enabled=False),
        np.full(100, 0.01),
        {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": False},
        100,
        100,
        0,
        1,
        meta,
        tmp_path / "checkpoint.pt",
        data.crop,
    )
    train_one_epoch(run, batches)  # 3 steps, no sync point among them
    assert run.step == 3 and run.sums["loss"].device == meta
    with pytest.raises((NotImplementedError, RuntimeError)):
        run.agree(None)  # the sync point reads the device

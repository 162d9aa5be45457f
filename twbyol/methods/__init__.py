"""The study's methods, built from a run's config: `build_method(cfg, n_tasks)`.

Every method is an nn.Module with `.online` (the part trained by gradient, holding the
`.backbone` that downstream stages embed with), `forward(crops, centres, online=, targets=,
step=)` returning (loss, stats) — loss None for a batch with nothing to learn from (BYOL: every
pair weighs 0), on which the trainer takes no step — and `update_target(momentum)` (a no-op
without a target network).
"""

from __future__ import annotations

from torch import nn

from twbyol.models.backbones import build_backbone
from twbyol.settings import METHODS

# Defaults where the papers differ from BYOL's (see methods/contrastive.py for sources).
DEFAULT_TEMPERATURE = {"moco_v3": 1.0, "simclr_v2": 0.1, "time_contrast": 0.1}


def build_method(cfg, n_tasks: int = 0) -> nn.Module:
    backbone = build_backbone(**cfg.backbone)
    m = cfg.method
    # each method's module imported in its branch only: a run loads (and its job's code
    # inputs name, twbyol.deps.DISPATCH) its own method's module alone
    if m in ("byol", "random_init"):  # random_init: BYOL's initialisation, never trained
        from twbyol.methods.byol import BYOL

        return BYOL(
            backbone,
            cfg.weighting,
            cfg.tau,
            cfg.proj_hidden,
            cfg.proj_dim,
            cfg.pred_hidden,
            cfg.normalize,
            cfg.seed,
        )
    temperature = cfg.temperature or DEFAULT_TEMPERATURE.get(m)
    if m == "moco_v3":
        from twbyol.methods.contrastive import MoCoV3

        return MoCoV3(backbone, cfg.proj_hidden, cfg.proj_dim, cfg.pred_hidden, temperature)
    if m == "simclr_v2":
        from twbyol.methods.contrastive import SimCLRV2

        return SimCLRV2(backbone, cfg.proj_hidden, cfg.proj_dim, temperature)
    if m == "time_contrast":
        from twbyol.methods.contrastive import TimeContrast

        return TimeContrast(backbone, cfg.proj_hidden, cfg.proj_dim, temperature, cfg.window)
    if m == "supervised":
        from twbyol.methods.supervised import Supervised

        return Supervised(backbone, n_tasks)
    raise ValueError(f"method: unknown {m!r}; expected one of {METHODS}")

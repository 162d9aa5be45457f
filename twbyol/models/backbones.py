"""Video backbones: a tiny 3D-CNN for CPU-scale runs and pytorchvideo's ResNets for the study.

Every backbone maps a clip (B, C, T, H, W) to a feature vector (B, D) and exposes `feature_dim`.
Input is grayscale (C = 1): MABe22 and RatSI are grayscale top-view videos. We train from
scratch (no ImageNet/Kinetics weights can be loaded here, and rho-BYOL pretrains from scratch),
so the stem is built for one input channel instead of replicating gray to three channels:
replication would triple the stem's cost for an input with no extra information.
"""

from __future__ import annotations

import torch
from torch import nn

# Kinetics mean/std of one channel, as pytorchvideo's rho-BYOL configs use for gray input.
MEAN, STD = 0.45, 0.225


def to_model_input(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W) or (..., T, 1, H, W) uint8 -> float normalised, channel-first (..., 1, T, H, W)."""
    x = frames.float().div_(255.0).sub_(MEAN).div_(STD)
    if x.dim() == 3:
        return x.unsqueeze(0)
    return x.transpose(-4, -3)


class TinyVideoNet(nn.Module):
    """Four Conv3d-BN-ReLU blocks and global (average by default) pooling; ~0.3 M parameters.

    Sized so that BYOL on 8 x 40 x 40 grayscale crops learns something in minutes on two
    CPU cores. Temporal stride is applied only in the last two blocks so that fast motion
    (grooming, sniffing) survives the early layers.
    """

    POOLS = ("avg", "max", "avgmax")

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 32,
        feature_dim: int = 128,
        pool: str = "avg",
        stem_stride: int = 2,
    ) -> None:
        """`pool`: how the last feature map is reduced over (T, H, W): "avg" (default, global
        average), "max" (global max: small animals on a large floor are not averaged away) or
        "avgmax" (both concatenated; the last block then has feature_dim // 2 channels so the
        output is still `feature_dim`). `stem_stride`: spatial stride of the first block (default
        2; 1 keeps full resolution into the second block, for animals only a few pixels wide, at
        about 4x the compute of the later blocks)."""
        super().__init__()
        if stem_stride not in (1, 2):
            raise ValueError(f"backbone.stem_stride: expected 1 or 2, got {stem_stride!r}")
        if pool not in self.POOLS:
            raise ValueError(f"backbone.pool: expected one of {self.POOLS}, got {pool!r}")
        if pool == "avgmax" and feature_dim % 2:
            raise ValueError("backbone.pool avgmax needs an even feature_dim")
        self.pool = pool
        last = feature_dim // 2 if pool == "avgmax" else feature_dim
        chans = [in_channels, width // 2, width, width * 2, last]
        strides = [(1, stem_stride, stem_stride), (1, 2, 2), (2, 2, 2), (2, 2, 2)]
        kernels = [(3, 5, 5), (3, 3, 3), (3, 3, 3), (3, 3, 3)]
        layers: list[nn.Module] = []
        for cin, cout, k, s in zip(chans[:-1], chans[1:], kernels, strides):
            layers += [
                nn.Conv3d(cin, cout, k, stride=s, padding=tuple(x // 2 for x in k), bias=False),
                nn.BatchNorm3d(cout),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers)
        self.feature_dim = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, D)
        f = self.features(x)
        if self.pool == "avg":
            return f.mean(dim=(2, 3, 4))
        mx = f.amax(dim=(2, 3, 4))
        return mx if self.pool == "max" else torch.cat([f.mean(dim=(2, 3, 4)), mx], dim=1)


class PyTorchVideoBackbone(nn.Module):
    """A pytorchvideo ResNet (Slow-R50) or SlowFast-R50 trunk without its classification head.

    The trunk's final feature map is average-pooled over (T, H, W) to (B, 2048), as in the
    rho-BYOL study, where the projector is attached after global pooling.
    """

    def __init__(self, name: str, in_channels: int = 1, slowfast_alpha: int = 4) -> None:
        super().__init__()
        from pytorchvideo.models import resnet, slowfast  # heavy import; only at full scale

        self.name = name
        self.slowfast_alpha = slowfast_alpha
        if name == "slow_r50":
            net = resnet.create_resnet(
                input_channel=in_channels,
                model_depth=50,
                norm=nn.BatchNorm3d,
                activation=nn.ReLU,
                head=None,
                # Slow pathway of SlowFast 8x8: no temporal downsampling in the stem/pool.
                stem_conv_kernel_size=(1, 7, 7),
                head_pool_kernel_size=(8, 7, 7),
                stage1_pool=None,
                stage_conv_a_kernel_size=((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
            )
            self.feature_dim = 2048
        elif name == "slowfast_r50":
            net = slowfast.create_slowfast(
                input_channels=(in_channels, in_channels),
                model_depth=50,
                slowfast_fusion_conv_stride=(slowfast_alpha, 1, 1),
                head=None,
                # global pooling of each pathway, whatever the clip size (the library's
                # default AvgPool3d kernels assume 224 px and 8/32 frames)
                head_pool=nn.AdaptiveAvgPool3d,
                head_output_size=((1, 1, 1), (1, 1, 1)),
            )
            self.feature_dim = 2048 + 256
        else:
            raise ValueError(f"backbone.name: unknown pytorchvideo backbone {name!r}")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, D)
        if self.name == "slowfast_r50":
            # fast pathway: every frame of the crop; slow pathway: every alpha-th
            return self.net([x[:, :, :: self.slowfast_alpha], x]).flatten(1)  # (B, 2048 + 256)
        return self.net(x).mean(dim=(2, 3, 4))


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Backbone by config name: `tiny`, `slow_r50` or `slowfast_r50`; has `.feature_dim`."""
    if name == "tiny":
        return TinyVideoNet(**kwargs)
    return PyTorchVideoBackbone(name, **kwargs)


def channels_last_wanted(setting: bool | str, device: torch.device) -> bool:
    """`training.channels_last`: true, false, or "auto" = true where it is measured faster.
    CPU (oneDNN): the tiny backbone's train step 1.3-1.7x faster in channels-last 3D (2 cores,
    2026-12-01); on GPU not yet measured, so auto leaves it off there."""
    if setting is True or setting is False:
        return setting
    if setting != "auto":
        raise ValueError(f'training.channels_last: expected true, false or "auto", got {setting!r}')
    return device.type == "cpu"


def to_channels_last(module: nn.Module) -> nn.Module:
    """Keep `module`'s 3D convolutions in channels-last (N, T, H, W, C) memory: their weights,
    and every 5D input they are given (a hook per Conv3d: a no-op on an input already in that
    format, so only the first layer converts). Values are unchanged (conv results agree to
    ~1e-7 in fp32); the state_dict keeps the same shapes and loads into either format."""
    module.to(memory_format=torch.channels_last_3d)

    def hook(_mod, args):
        x = args[0]
        if isinstance(x, torch.Tensor) and x.dim() == 5:
            return (x.contiguous(memory_format=torch.channels_last_3d), *args[1:])
        return None

    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_pre_hook(hook)
    return module


class MLP(nn.Module):
    """Linear-BN-ReLU blocks then a final Linear: BYOL's projector and predictor (Grill et al.
    2020)."""

    def __init__(
        self, in_dim: int, hidden_dim: int, out_dim: int, n_layers: int = 2, last_bn: bool = False
    ) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (n_layers - 1)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(dims[-1], out_dim, bias=not last_bn))
        if last_bn:  # SimCLR-v2 / MoCo-v3 projectors end in BN without affine
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_dim) -> (B, out_dim)
        return self.net(x)

"""LightCLIP-style lightweight CLIP towers (in the spirit of arXiv 2312.00674).

The image tower is a MobileNetV2-style network: a strided 3×3 stem, stages of inverted residual
blocks (1×1 expansion → 3×3 depthwise → 1×1 linear projection, residual when shapes allow), a 1×1
head, global average pooling and a linear projection into the joint space. The text tower is
CLIP's causal transformer with fewer layers (a :class:`TextConfig` with small ``layers``), built
by :class:`edgevl_export.models.clip.CLIP` itself. Everything is plain Conv/BN/activation, which
ONNX Runtime folds (Conv+BN) and TensorRT fuses.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from edgevl_export.models.clip import CLIPConfig, TextConfig
from torch import nn

# (expand ratio, output channels, repeats, stride of the first block)
Stage = tuple[int, int, int, int]
MOBILENET_V2_STAGES: tuple[Stage, ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


@dataclass(frozen=True)
class MobileVisionConfig:
    image_size: int = 224
    stem: int = 32
    blocks: tuple[Stage, ...] = MOBILENET_V2_STAGES
    head: int = 1280
    act: str = "hardswish"  # or "relu6"

    @property
    def is_resnet(self) -> bool:
        return False


def _act(name: str) -> nn.Module:
    if name == "relu6":
        return nn.ReLU6()
    if name == "hardswish":
        return nn.Hardswish()
    raise ValueError(f"unknown activation {name!r} (relu6 or hardswish)")


def conv_bn(
    cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None
) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
    ]
    if act:
        layers.append(("act", _act(act)))
    return nn.Sequential(OrderedDict(layers))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: str) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.expand = conv_bn(cin, hidden, 1, act=act) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act)
        self.project = conv_bn(hidden, cout, 1)  # linear bottleneck: no activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class MobileImageEncoder(nn.Module):
    def __init__(self, cfg: MobileVisionConfig, output_dim: int) -> None:
        super().__init__()
        self.stem = conv_bn(3, cfg.stem, 3, 2, act=cfg.act)
        blocks: list[nn.Module] = []
        cin = cfg.stem
        for expand, cout, repeats, stride in cfg.blocks:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, cfg.act))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(cin, cfg.head, 1, act=cfg.act)
        self.proj = nn.Linear(cfg.head, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        out: torch.Tensor = self.proj(x.mean(dim=(2, 3)))
        return out


def lightclip_config(
    embed_dim: int = 256,
    image_size: int = 224,
    vision: MobileVisionConfig | None = None,
    text_layers: int = 4,
    text_width: int = 256,
    text_heads: int = 4,
    context_length: int = 77,
    vocab_size: int = 49408,
    eot_id: int = 49407,
) -> CLIPConfig:
    """A LightCLIP config: MobileNet-style image tower, a shortened text transformer."""
    v = vision or MobileVisionConfig(image_size=image_size)
    text = TextConfig(context_length, vocab_size, text_width, text_heads, text_layers, eot_id=eot_id)
    return CLIPConfig(embed_dim=embed_dim, vision=v, text=text, quick_gelu=False, kind="lightclip")


_SMALL_STAGES: tuple[Stage, ...] = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 48, 1, 2))
LIGHT_ARCHS: dict[str, CLIPConfig] = {
    "LightCLIP-MNv2": lightclip_config(),
    "LightCLIP-S": lightclip_config(
        embed_dim=256, vision=MobileVisionConfig(224, 16, (*_SMALL_STAGES, (4, 96, 1, 2)), 512),
        text_layers=3,
    ),
    "test-lightclip": lightclip_config(
        embed_dim=32, vision=MobileVisionConfig(32, 8, ((1, 8, 1, 1), (4, 16, 1, 2), (4, 24, 1, 2)), 48),
        text_layers=1, text_width=48, text_heads=4, context_length=16, vocab_size=300, eot_id=299,
    ),
}

__all__ = ["LIGHT_ARCHS", "MobileImageEncoder", "MobileVisionConfig", "lightclip_config"]

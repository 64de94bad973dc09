"""The CRAFT text detector (``craft_mlt_25k.pth``, EasyOCR's default detector) as a torch reference.

Layout read from the checkpoint's keys: a VGG16-BN backbone cut into five slices
(``basenet.slice1..4`` hold the torchvision ``vgg16_bn.features`` layers at their original
indices; ``slice5`` is a 3×3/1 max-pool, a dilated 3×3 conv to 1024 and a 1×1 conv), a U-net
decoder of four ``upconv`` blocks (1×1 conv + BN + ReLU, 3×3 conv + BN + ReLU; each block's input
is the previous output, bilinearly resized to the next skip feature and concatenated with it) and
``conv_cls`` (3×3, 3×3, 3×3, 1×1 convs with ReLU, then a 1×1 conv to 2 maps). Output: the region
score and the affinity (link) score at half the input resolution, (B, H/2, W/2, 2).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from edgevl.errors import CheckpointError

CRAFT_PREFIXES = ("basenet.slice1.", "upconv1.", "conv_cls.")
#: vgg16_bn.features layers per slice: (index, kind, in, out) with kind conv / bn / relu / pool
_VGG = [(0, "conv", 3, 64), (1, "bn", 64, 64), (2, "relu", 0, 0), (3, "conv", 64, 64), (4, "bn", 64, 64),
        (5, "relu", 0, 0), (6, "pool", 0, 0), (7, "conv", 64, 128), (8, "bn", 128, 128), (9, "relu", 0, 0),
        (10, "conv", 128, 128), (11, "bn", 128, 128), (12, "relu", 0, 0), (13, "pool", 0, 0),
        (14, "conv", 128, 256), (15, "bn", 256, 256), (16, "relu", 0, 0), (17, "conv", 256, 256),
        (18, "bn", 256, 256), (19, "relu", 0, 0), (20, "conv", 256, 256), (21, "bn", 256, 256),
        (22, "relu", 0, 0), (23, "pool", 0, 0), (24, "conv", 256, 512), (25, "bn", 512, 512),
        (26, "relu", 0, 0), (27, "conv", 512, 512), (28, "bn", 512, 512), (29, "relu", 0, 0),
        (30, "conv", 512, 512), (31, "bn", 512, 512), (32, "relu", 0, 0), (33, "pool", 0, 0),
        (34, "conv", 512, 512), (35, "bn", 512, 512), (36, "relu", 0, 0), (37, "conv", 512, 512),
        (38, "bn", 512, 512)]
SLICES = ((0, 12), (12, 19), (19, 29), (29, 39))


def _layer(kind: str, cin: int, cout: int) -> nn.Module:
    if kind == "conv":
        return nn.Conv2d(cin, cout, 3, padding=1)
    if kind == "bn":
        return nn.BatchNorm2d(cout)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    return nn.MaxPool2d(2, 2)


class VGG16BN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for n, (lo, hi) in enumerate(SLICES, start=1):
            layers = OrderedDict((str(i), _layer(k, a, b)) for i, k, a, b in _VGG if lo <= i < hi)
            setattr(self, f"slice{n}", nn.Sequential(layers))
        self.slice5 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6),
                                    nn.Conv2d(1024, 1024, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for n in range(1, 6):
            x = getattr(self, f"slice{n}")(x)
            outs.append(x)
        return outs[::-1]  # deepest first


class UpConv(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin + mid, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return out


class CRAFT(nn.Module):
    """(B, 3, H, W) normalised RGB → (B, H/2, W/2, 2): region and affinity scores (H, W multiples of 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.basenet = VGG16BN()
        self.upconv1 = UpConv(1024, 512, 256)
        self.upconv2 = UpConv(512, 256, 128)
        self.upconv3 = UpConv(256, 128, 64)
        self.upconv4 = UpConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(inplace=True), nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 1), nn.ReLU(inplace=True), nn.Conv2d(16, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.basenet(x)
        y = self.upconv1(torch.cat([s[0], s[1]], 1))
        for up, skip in ((self.upconv2, s[2]), (self.upconv3, s[3]), (self.upconv4, s[4])):
            y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], 1))
        out: torch.Tensor = self.conv_cls(y).permute(0, 2, 3, 1)
        return out


class CRAFTTextMap(nn.Module):
    """The exported detector graph: one text probability map at the input's resolution, the larger
    of region and affinity score (CRAFT joins characters into words through the affinity) clipped
    to 0..1, so the runtime's DB box extraction reads it as it reads a DB probability map."""

    def __init__(self, craft: CRAFT) -> None:
        super().__init__()
        self.craft = craft

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.craft(x)
        m = torch.maximum(y[..., 0], y[..., 1]).clamp(0.0, 1.0)[:, None]
        return F.interpolate(m, size=x.shape[2:], mode="bilinear", align_corners=False)


def is_craft(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(CRAFT_PREFIXES) for k in sd)


def check_craft(sd: Mapping[str, torch.Tensor], where: str) -> None:
    if not is_craft(sd) or "conv_cls.8.weight" not in sd:
        raise CheckpointError(f"{where}: not a CRAFT detector (no basenet.slice1 / upconv1 / "
                              "conv_cls.8 keys)")

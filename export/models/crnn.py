"""EasyOCR's "generation 2" CRNN recogniser as a torch reference: VGG feature extractor,
2 × bidirectional LSTM, linear CTC head.

The layer layout is read from the checkpoint's keys (``FeatureExtraction.ConvNet.<i>``,
``SequenceModeling.<j>.rnn`` / ``.linear``, ``Prediction``), so the module names here are the
checkpoint's and :func:`infer_config` only reads sizes:

* ``ConvNet``: conv3×3 → ReLU → pool 2×2 (×2 blocks: C/8, C/4), two conv3×3 + ReLU at C/2 → pool
  2×1, two bias-free conv3×3 + BatchNorm + ReLU at C → pool 2×1, conv2×2 (no padding) + ReLU. A
  grey 64-pixel-high crop of width W gives a C×3×(W/4 − 1) map;
* the height axis is averaged (EasyOCR writes it as ``AdaptiveAvgPool2d((None, 1))`` on the
  permuted map: the same mean), each column becomes one time step;
* each ``SequenceModeling`` block is a bidirectional LSTM followed by a linear layer back to the
  hidden size; ``Prediction`` maps a time step to ``num_classes`` logits (CTC blank at index 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from edgevl.errors import CheckpointError

#: the key prefixes every CRNN of this family has (after any ``module.`` prefix is removed)
CRNN_PREFIXES = ("FeatureExtraction.ConvNet.", "SequenceModeling.", "Prediction.")
#: ConvNet indices of the layers with weights: six 3×3 convs, two BatchNorms, the final 2×2 conv
CONV_IDX = (0, 3, 6, 8, 11, 14, 18)
BN_IDX = (12, 15)
#: the model's input height (EasyOCR's ``imgH``): four height halvings and the 2×2 conv need ≥ 32
INPUT_HEIGHT = 64


@dataclass(frozen=True)
class CRNNConfig:
    in_channels: int = 1
    channels: int = 256  # the last conv block's width (EasyOCR's ``output_channel``)
    hidden: int = 256
    num_classes: int = 97
    lstm_blocks: int = 2

    def describe(self) -> str:
        return (f"crnn-vgg{self.channels}-bilstm{self.lstm_blocks}x{self.hidden}-"
                f"{self.num_classes}cls-{'grey' if self.in_channels == 1 else f'{self.in_channels}ch'}")


class BiLSTM(nn.Module):
    """Bidirectional LSTM over (batch, time, features), then a linear layer to ``out``."""

    def __init__(self, inp: int, hidden: int, out: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(inp, hidden, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(2 * hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        out: torch.Tensor = self.linear(y)
        return out


class VGGFeatures(nn.Module):
    def __init__(self, cfg: CRNNConfig) -> None:
        super().__init__()
        c = cfg.channels
        c1, c2, c3 = c // 8, c // 4, c // 2
        self.ConvNet = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),  # 0-2
            nn.Conv2d(c1, c2, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),  # 3-5
            nn.Conv2d(c2, c3, 3, 1, 1), nn.ReLU(True),  # 6-7
            nn.Conv2d(c3, c3, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),  # 8-10
            nn.Conv2d(c3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),  # 11-13
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),  # 14-16
            nn.MaxPool2d((2, 1), (2, 1)),  # 17
            nn.Conv2d(c, c, 2, 1, 0), nn.ReLU(True),  # 18-19
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.ConvNet(x)
        return out


class CRNN(nn.Module):
    """(batch, in_channels, 64, W) normalised crops → (batch, W/4 − 1, num_classes) CTC logits."""

    def __init__(self, cfg: CRNNConfig) -> None:
        super().__init__()
        self.config = cfg
        self.FeatureExtraction = VGGFeatures(cfg)
        blocks = [BiLSTM(cfg.channels, cfg.hidden, cfg.hidden)]
        blocks += [BiLSTM(cfg.hidden, cfg.hidden, cfg.hidden) for _ in range(cfg.lstm_blocks - 1)]
        self.SequenceModeling = nn.Sequential(*blocks)
        self.Prediction = nn.Linear(cfg.hidden, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.FeatureExtraction(x)  # (B, C, H', T)
        seq = f.mean(dim=2).transpose(1, 2)  # (B, T, C): columns are time steps
        out: torch.Tensor = self.Prediction(self.SequenceModeling(seq))
        return out


class CRNNProbs(nn.Module):
    """The exported graph: the CRNN's logits through a softmax over the classes (what the runtime's
    CTC decoder reads)."""

    def __init__(self, crnn: CRNN) -> None:
        super().__init__()
        self.crnn = crnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.crnn(x), dim=-1)


def is_crnn(sd: Mapping[str, torch.Tensor]) -> bool:
    """True when the keys look like this CRNN family (any of its three parts): the caller then gets
    the precise mismatch from :func:`infer_config` or the loader instead of another model's error."""
    return any(k.startswith(CRNN_PREFIXES) for k in sd)


def _shape(sd: Mapping[str, torch.Tensor], key: str, ndim: int, where: str) -> tuple[int, ...]:
    t = sd.get(key)
    if t is None:
        raise CheckpointError(f"{where}: not an EasyOCR CRNN: the key {key!r} is missing")
    if t.ndim != ndim:
        raise CheckpointError(f"{where}: {key} has shape {tuple(t.shape)}, expected {ndim} dimensions")
    return tuple(int(d) for d in t.shape)


def infer_config(sd: Mapping[str, torch.Tensor], where: str) -> CRNNConfig:
    """The CRNN's sizes from its tensors' shapes; CheckpointError naming the key that does not fit."""
    if not is_crnn(sd):
        shown = ", ".join(sorted(sd)[:6])
        raise CheckpointError(f"{where}: not an EasyOCR CRNN recogniser (no FeatureExtraction / "
                              f"SequenceModeling / Prediction keys; it has {shown}, …)")
    first = _shape(sd, "FeatureExtraction.ConvNet.0.weight", 4, where)
    last = _shape(sd, "FeatureExtraction.ConvNet.18.weight", 4, where)
    head = _shape(sd, "Prediction.weight", 2, where)
    lstm_blocks = 0
    while f"SequenceModeling.{lstm_blocks}.rnn.weight_hh_l0" in sd:
        lstm_blocks += 1
    if lstm_blocks == 0:
        raise CheckpointError(f"{where}: not an EasyOCR CRNN: no SequenceModeling.0.rnn weights")
    hh = _shape(sd, "SequenceModeling.0.rnn.weight_hh_l0", 2, where)
    cfg = CRNNConfig(in_channels=first[1], channels=last[0], hidden=hh[1], num_classes=head[0],
                     lstm_blocks=lstm_blocks)
    if cfg.channels % 8 or cfg.num_classes < 2:
        raise CheckpointError(f"{where}: unexpected CRNN sizes {cfg}")
    return cfg


def build_model(cfg: CRNNConfig) -> CRNN:
    return CRNN(cfg).eval()

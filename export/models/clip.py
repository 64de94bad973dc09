"""OpenAI / OpenCLIP CLIP in plain torch, written for export.

Parameter names follow the OpenAI checkpoint layout (``visual.*``, ``transformer.resblocks.N.*``,
``token_embedding``, ``ln_final``, ``text_projection``, ``logit_scale``) except that attention's
packed ``in_proj_weight``/``in_proj_bias`` are split into ``q_proj``/``k_proj``/``v_proj`` (the
loaders do the split). Configs are data (:data:`ARCHS`).

Export-minded choices:

* attention is spelled ``softmax(q·kᵀ·scale + mask) · v`` with separate q/k/v projections: the
  MatMul → Mul → Add → Softmax → MatMul chain that ONNX Runtime's CLIP attention fusion
  (``onnxruntime.transformers.optimizer``, model_type ``clip``) and TensorRT's MHA fusion
  pattern-match (no ``nn.MultiheadAttention``, whose export is an opaque tangle);
* ``nn.LayerNorm`` becomes one ``LayerNormalization`` node at opset ≥ 17, so fp16 engines can keep
  it in fp32;
* end-of-text pooling is a one-hot matmul on an index computed with ``ArgMax`` over a tie-free
  score: no data-dependent shapes, no int64 GatherND (see :func:`eot_pool`);
* the causal mask is computed from the sequence length in the form ORT's fusion recognises.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from edgevl_export.models.lightclip import MobileVisionConfig


@dataclass(frozen=True)
class VisionConfig:
    """Image tower. ``layers`` is an int for a ViT, a 4-tuple for the modified ResNet."""

    image_size: int = 224
    layers: int | tuple[int, int, int, int] = 12
    width: int = 768
    patch_size: int = 32
    heads: int = 0  # 0: width // 64 (ViT) or width * 32 // 64 (ResNet), as in OpenAI's models
    mlp_ratio: float = 4.0

    @property
    def is_resnet(self) -> bool:
        return isinstance(self.layers, (tuple, list))

    @property
    def num_heads(self) -> int:
        if self.heads:
            return self.heads
        return self.width * 32 // 64 if self.is_resnet else max(1, self.width // 64)


@dataclass(frozen=True)
class TextConfig:
    context_length: int = 77
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12
    mlp_ratio: float = 4.0
    eot_id: int = 49407


@dataclass(frozen=True)
class CLIPConfig:
    embed_dim: int = 512
    vision: VisionConfig | MobileVisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    quick_gelu: bool = True  # OpenAI's weights use QuickGELU; most OpenCLIP-trained ones use GELU
    kind: str = "clip"  # "clip" or "lightclip" (see models/lightclip.py)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists); :meth:`from_dict` inverts it."""
        d: dict[str, Any] = asdict(self)
        for k, v in d["vision"].items():
            if isinstance(v, tuple):
                d["vision"][k] = [list(x) if isinstance(x, tuple) else x for x in v]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> CLIPConfig:
        v = dict(d.get("vision", {}))
        vision: VisionConfig | MobileVisionConfig
        if d.get("kind", "clip") == "lightclip":
            from edgevl_export.models.lightclip import MobileVisionConfig

            v["blocks"] = tuple(tuple(b) for b in v.get("blocks", ()))
            vision = MobileVisionConfig(**v)
        else:
            if isinstance(v.get("layers"), list):
                v["layers"] = tuple(v["layers"])
            vision = VisionConfig(**v)
        return CLIPConfig(
            embed_dim=int(d["embed_dim"]),
            vision=vision,
            text=TextConfig(**d.get("text", {})),
            quick_gelu=bool(d.get("quick_gelu", True)),
            kind=str(d.get("kind", "clip")),
        )


_T = TextConfig
ARCHS: dict[str, CLIPConfig] = {
    "ViT-B-32": CLIPConfig(512, VisionConfig(224, 12, 768, 32), _T(width=512, heads=8, layers=12)),
    "ViT-B-16": CLIPConfig(512, VisionConfig(224, 12, 768, 16), _T(width=512, heads=8, layers=12)),
    "ViT-L-14": CLIPConfig(768, VisionConfig(224, 24, 1024, 14), _T(width=768, heads=12, layers=12)),
    "ViT-L-14-336": CLIPConfig(768, VisionConfig(336, 24, 1024, 14), _T(width=768, heads=12, layers=12)),
    "RN50": CLIPConfig(1024, VisionConfig(224, (3, 4, 6, 3), 64), _T(width=512, heads=8, layers=12)),
    "RN101": CLIPConfig(512, VisionConfig(224, (3, 4, 23, 3), 64), _T(width=512, heads=8, layers=12)),
    # TinyCLIP-style reduced ViTs (arXiv 2309.12314) are just smaller configs of the same towers
    "TinyCLIP-ViT-8M-16": CLIPConfig(
        512, VisionConfig(224, 10, 256, 16, heads=4), _T(width=256, heads=4, layers=3), quick_gelu=False
    ),
    "TinyCLIP-ViT-39M-16": CLIPConfig(
        512, VisionConfig(224, 12, 512, 16, heads=8), _T(width=512, heads=8, layers=6), quick_gelu=False
    ),
    # small configs for tests and the toy model
    "test-vit": CLIPConfig(32, VisionConfig(32, 2, 64, 8, heads=4), _T(16, 300, 48, 4, 2, eot_id=299)),
    "test-rn": CLIPConfig(32, VisionConfig(64, (1, 1, 1, 1), 16, heads=2), _T(16, 300, 48, 4, 2, eot_id=299)),
}


def get_arch(name: str) -> CLIPConfig:
    from edgevl.errors import CheckpointError

    try:
        return ARCHS[name]
    except KeyError:
        from edgevl_export.models.lightclip import LIGHT_ARCHS

        if name in LIGHT_ARCHS:
            return LIGHT_ARCHS[name]
        known = sorted(ARCHS) + sorted(LIGHT_ARCHS)
        raise CheckpointError(f"unknown architecture {name!r}; known: {', '.join(known)}") from None


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head self-attention, batch first.

    q/k/v are separate projections (OpenAI's packed ``in_proj_weight`` is split by the loader):
    the q/k/v ``MatMul+Add → Reshape → Transpose`` shape is what ONNX Runtime's CLIP attention
    fusion matches, and the scale is applied after ``q·kᵀ`` as in its pattern.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                query: torch.Tensor | None = None) -> torch.Tensor:
        """``query``: the tokens that ask (default: all of ``x``); keys and values are all of ``x``."""
        b, n, d = x.shape
        h, hd = self.heads, d // self.heads
        q_in = x if query is None else query
        nq = q_in.shape[1]
        q = self.q_proj(q_in).reshape(b, nq, h, hd).transpose(1, 2)
        k = self.k_proj(x).reshape(b, n, h, hd).permute(0, 2, 3, 1)
        v = self.v_proj(x).reshape(b, n, h, hd).transpose(1, 2)
        scores = (q @ k) * self.scale
        if mask is not None:
            scores = scores + mask
        out = scores.softmax(dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, nq, d))


class Mlp(nn.Sequential):
    def __init__(self, width: int, hidden: int, quick_gelu: bool) -> None:
        super().__init__(OrderedDict([
            ("c_fc", nn.Linear(width, hidden)),
            ("gelu", QuickGELU() if quick_gelu else nn.GELU()),
            ("c_proj", nn.Linear(hidden, width)),
        ]))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float, quick_gelu: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, int(width * mlp_ratio), quick_gelu)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))

    def forward_first(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output for the first (class) token only, ``[b, 1, w]``.

        Exact: every token is still a key and value, but the query, out-projection and MLP run
        on one token instead of all of them. The image tower's last block needs nothing else.
        """
        y = self.ln_1(x)
        first = x[:, :1] + self.attn(y, query=y[:, :1])
        return first + self.mlp(self.ln_2(first))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_ratio: float, quick_gelu: bool) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_ratio, quick_gelu) for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, cfg: VisionConfig, output_dim: int, quick_gelu: bool) -> None:
        super().__init__()
        assert isinstance(cfg.layers, int)
        w, grid = cfg.width, cfg.image_size // cfg.patch_size
        self.conv1 = nn.Conv2d(3, w, cfg.patch_size, cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w) * w**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, w) * w**-0.5)
        self.ln_pre = nn.LayerNorm(w)
        self.transformer = Transformer(w, cfg.layers, cfg.num_heads, cfg.mlp_ratio, quick_gelu)
        self.ln_post = nn.LayerNorm(w)
        self.proj = nn.Parameter(torch.randn(w, output_dim) * w**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [b, grid², w]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        *blocks, last = self.transformer.resblocks
        for block in blocks:
            x = block(x)
        # only the class token leaves the tower: the last block computes nothing else (exact;
        # about 7% of ViT-B/32's FLOPs)
        return self.ln_post(last.forward_first(x)[:, 0]) @ self.proj


class Bottleneck(nn.Module):
    """The modified-ResNet bottleneck: anti-aliased strides (avgpool before the strided path)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU()
        self.avgpool: nn.Module = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.act3 = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * 4)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act3(out + identity)


class AttentionPool2d(nn.Module):
    """Attention pooling: the mean token queries the (mean + spatial) tokens."""

    def __init__(self, spacial_dim: int, embed_dim: int, heads: int, output_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        x = x.flatten(2).transpose(1, 2)  # [b, hw, c]
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.positional_embedding.to(x.dtype)
        h, hd = self.heads, c // self.heads
        q = self.q_proj(x[:, :1]).reshape(b, 1, h, hd).transpose(1, 2) * hd**-0.5
        k = self.k_proj(x).reshape(b, -1, h, hd).transpose(1, 2)
        v = self.v_proj(x).reshape(b, -1, h, hd).transpose(1, 2)
        out = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v  # [b, h, 1, hd]
        return self.c_proj(out.reshape(b, c))


class ModifiedResNet(nn.Module):
    """OpenAI's RN50-style tower: 3-conv stem, avgpool downsampling, attention pooling."""

    def __init__(self, cfg: VisionConfig, output_dim: int) -> None:
        super().__init__()
        assert isinstance(cfg.layers, (tuple, list))
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w // 2)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(w // 2, w // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w // 2)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(w // 2, w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(w)
        self.act3 = nn.ReLU()
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = w
        self.layer1 = self._make_layer(w, cfg.layers[0])
        self.layer2 = self._make_layer(w * 2, cfg.layers[1], stride=2)
        self.layer3 = self._make_layer(w * 4, cfg.layers[2], stride=2)
        self.layer4 = self._make_layer(w * 8, cfg.layers[3], stride=2)
        self.attnpool = AttentionPool2d(cfg.image_size // 32, w * 32, cfg.num_heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.act3(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


def causal_mask(batch: int, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive causal mask [batch, 1, n, n]: ``-inf`` where the key comes after the query.

    Spelled Less → Where → Unsqueeze → Unsqueeze → Expand: the causal-mask shape ONNX Runtime's
    CLIP attention fusion recognises (it then fuses to a unidirectional Attention node).
    """
    pos = torch.arange(n)
    future = pos.unsqueeze(1) < pos.unsqueeze(0)  # [query, key]: key after query
    mask = torch.where(future, torch.tensor(float("-inf")), torch.tensor(0.0)).to(dtype)
    return mask.unsqueeze(0).unsqueeze(0).expand(batch, 1, n, n)


def eot_pool(x: torch.Tensor, input_ids: torch.Tensor, eot_id: int) -> torch.Tensor:
    """Features at the first end-of-text token of each sequence (the last token if there is none).

    The index comes from ``ArgMax`` over a score that is unique at its maximum (first EOT scores
    ``2n - pos``, other tokens ``pos``), so ties never depend on the backend; the gather is a
    one-hot matmul, exact in fp32/fp16 and free of GatherND / data-dependent shapes.
    """
    n = input_ids.shape[1]
    pos = torch.arange(n, device=input_ids.device, dtype=torch.int32).unsqueeze(0)
    score = torch.where(input_ids == eot_id, 2 * n - pos, pos)
    idx = score.argmax(dim=-1, keepdim=True).to(torch.int32)  # [b, 1]
    onehot = (pos == idx).to(x.dtype).unsqueeze(1)  # [b, 1, n]
    return (onehot @ x).squeeze(1)


class CLIP(nn.Module):
    """Image tower + text tower + logit scale. ``encode_*`` return unnormalised embeddings."""

    def __init__(self, cfg: CLIPConfig) -> None:
        super().__init__()
        self.config = cfg
        self.visual = build_visual(cfg)
        t = cfg.text
        self.token_embedding = nn.Embedding(t.vocab_size, t.width)
        self.positional_embedding = nn.Parameter(torch.randn(t.context_length, t.width) * 0.01)
        self.transformer = Transformer(t.width, t.layers, t.heads, t.mlp_ratio, cfg.quick_gelu)
        self.ln_final = nn.LayerNorm(t.width)
        self.text_projection = nn.Parameter(torch.randn(t.width, cfg.embed_dim) * t.width**-0.5)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.visual(pixel_values)
        return out

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.positional_embedding[:n]
        x = self.transformer(x, causal_mask(input_ids.shape[0], n, x.dtype))
        x = self.ln_final(x)
        return eot_pool(x, input_ids, self.config.text.eot_id) @ self.text_projection

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Image-text logits [n_images, n_texts] (scaled cosine similarities)."""
        img = F.normalize(self.encode_image(pixel_values), dim=-1)
        txt = F.normalize(self.encode_text(input_ids), dim=-1)
        return self.logit_scale.exp() * img @ txt.t()


def build_visual(cfg: CLIPConfig) -> nn.Module:
    if not isinstance(cfg.vision, VisionConfig):
        from edgevl_export.models.lightclip import MobileImageEncoder

        return MobileImageEncoder(cfg.vision, cfg.embed_dim)
    if cfg.vision.is_resnet:
        return ModifiedResNet(cfg.vision, cfg.embed_dim)
    return VisionTransformer(cfg.vision, cfg.embed_dim, cfg.quick_gelu)


def build_model(cfg: CLIPConfig) -> CLIP:
    return CLIP(cfg).eval()


__all__ = [
    "ARCHS", "CLIP", "CLIPConfig", "TextConfig", "VisionConfig", "build_model", "eot_pool", "get_arch",
]

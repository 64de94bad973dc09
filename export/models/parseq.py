"""A PARSeq-style scene-text recogniser with a non-autoregressive (NAR) decoder, as a torch reference.

PARSeq (Bautista & Atienza, ECCV 2022) reads a fixed-size crop with a ViT encoder and a small
transformer decoder whose *query stream* holds one learned position query per output slot. In its
non-autoregressive mode every slot is decoded in one pass: the content stream holds only the
[BOS] token's embedding, so each position query attends to it (self-attention over the content
stream), then to the image tokens (cross-attention), then an MLP; a linear head gives each slot's
class logits (class 0 = [EOS], then the characters). No loop, no cache: one static graph, which is
why this is the attention-decoder shape worth exporting for edge devices.

Written from the paper's description; with random weights (``seed``) it exists to test the
export: ONNX with a dynamic batch, checked against this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ParseqConfig:
    image_size: tuple[int, int] = (32, 128)
    patch_size: tuple[int, int] = (4, 8)
    in_channels: int = 3
    embed_dim: int = 96
    heads: int = 3
    enc_depth: int = 3
    dec_depth: int = 1
    mlp_ratio: int = 4
    max_label_length: int = 25
    num_classes: int = 95  # [EOS] + 94 printable ASCII characters

    @property
    def num_patches(self) -> int:
        return (self.image_size[0] // self.patch_size[0]) * (self.image_size[1] // self.patch_size[1])

    @property
    def bos_id(self) -> int:
        return self.num_classes  # the embedding table also holds [BOS] (and [PAD], unused here)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention written out (MatMul, Softmax, MatMul): the same graph
    whatever the head count (``nn.MultiheadAttention``'s eval fast path has no ONNX export)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        b, n, d = query.shape
        hd = d // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(b, -1, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(key)), split(self.v(value))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        out: torch.Tensor = self.out((att @ v).transpose(1, 2).reshape(b, n, d))
        return out


def _mlp(dim: int, ratio: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Linear(dim * ratio, dim))


class EncoderBlock(nn.Module):
    """Pre-norm ViT block."""

    def __init__(self, cfg: ParseqConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.attn = Attention(cfg.embed_dim, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        self.mlp = _mlp(cfg.embed_dim, cfg.mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h)
        out: torch.Tensor = x + self.mlp(self.norm2(x))
        return out


class Encoder(nn.Module):
    def __init__(self, cfg: ParseqConfig) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(cfg.in_channels, cfg.embed_dim, cfg.patch_size, cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches, cfg.embed_dim))
        self.blocks = nn.Sequential(*[EncoderBlock(cfg) for _ in range(cfg.enc_depth)])
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(img).flatten(2).transpose(1, 2) + self.pos_embed
        out: torch.Tensor = self.norm(self.blocks(x))
        return out


class DecoderLayer(nn.Module):
    """Query stream over the content stream (self-attention), then over the image (cross-attention)."""

    def __init__(self, cfg: ParseqConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.norm_q, self.norm_c = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = Attention(d, cfg.heads)
        self.norm1 = nn.LayerNorm(d)
        self.cross_attn = Attention(d, cfg.heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = _mlp(d, cfg.mlp_ratio)

    def forward(self, query: torch.Tensor, content: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        c = self.norm_c(content)
        q = query + self.self_attn(self.norm_q(query), c, c)
        q = q + self.cross_attn(self.norm1(q), memory, memory)
        out: torch.Tensor = q + self.mlp(self.norm2(q))
        return out


class ParseqNAR(nn.Module):
    """(B, 3, 32, 128) normalised crops → (B, max_label_length + 1, num_classes) slot probabilities."""

    def __init__(self, cfg: ParseqConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.text_embed = nn.Embedding(cfg.num_classes + 2, cfg.embed_dim)  # + [BOS], [PAD]
        self.pos_queries = nn.Parameter(torch.zeros(1, cfg.max_label_length + 1, cfg.embed_dim))
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.dec_depth)])
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        memory = self.encoder(img)
        b = img.shape[0]
        bos = self.text_embed.weight[self.config.bos_id] * math.sqrt(self.config.embed_dim)
        content = bos.reshape(1, 1, -1).expand(b, 1, -1)  # NAR: the content stream is [BOS] alone
        q = self.pos_queries.expand(b, -1, -1)
        for layer in self.layers:
            q = layer(q, content, memory)
        return torch.softmax(self.head(self.norm(q)), dim=-1)


def random_model(cfg: ParseqConfig, seed: int = 0) -> ParseqNAR:
    """Random weights (seeded), with non-zero position embeddings and queries so every path counts."""
    torch.manual_seed(seed)
    model = ParseqNAR(cfg)
    with torch.no_grad():
        nn.init.trunc_normal_(model.encoder.pos_embed, std=0.02)
        nn.init.trunc_normal_(model.pos_queries, std=0.02)
        nn.init.normal_(model.text_embed.weight, std=0.02)
    return model.eval()


def nar_greedy(probs: torch.Tensor, eos: int = 0) -> list[list[int]]:
    """Each item's class ids up to (without) the first [EOS]."""
    out = []
    for row in probs.argmax(-1).tolist():
        out.append(row[: row.index(eos)] if eos in row else row)
    return out

"""A BERT encoder in plain torch, short enough to read in one sitting.

Written for export: attention is spelled out as MatMul → scale → add mask → Softmax → MatMul with
separate query/key/value projections, GELU is the exact erf form and LayerNorm is ``nn.LayerNorm``
(exported as ``LayerNormalization`` at opset ≥ 17). That is the shape ONNX Runtime's transformer
optimiser fuses into ``Attention``, ``SkipLayerNormalization`` and ``Gelu``/``BiasGelu`` nodes.

:class:`SentenceEncoder` adds the sentence-transformers head of all-MiniLM-L6-v2: mean pooling
over the attention mask, then L2 normalisation — inside the module, so inside the ONNX graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_id: int = 0

    @staticmethod
    def from_hf(cfg: dict[str, Any]) -> BertConfig:
        """From a Hugging Face ``config.json`` (model_type bert)."""
        return BertConfig(
            vocab_size=int(cfg["vocab_size"]),
            hidden_size=int(cfg["hidden_size"]),
            num_layers=int(cfg["num_hidden_layers"]),
            num_heads=int(cfg["num_attention_heads"]),
            intermediate_size=int(cfg["intermediate_size"]),
            max_position=int(cfg.get("max_position_embeddings", 512)),
            type_vocab_size=int(cfg.get("type_vocab_size", 2)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
            pad_id=int(cfg.get("pad_token_id", 0) or 0),
        )


class Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.position(positions)
        types = self.token_type.weight[0] if token_type_ids is None else self.token_type(token_type_ids)
        x = x + types
        return self.norm(x)


class SelfAttention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        if c.hidden_size % c.num_heads:
            raise ValueError(f"hidden_size {c.hidden_size} is not a multiple of num_heads {c.num_heads}")
        self.heads = c.num_heads
        self.head_dim = c.hidden_size // c.num_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.out = nn.Linear(c.hidden_size, c.hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # [b, s, h*d] -> [b, h, s, d]
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores + mask_bias, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        b, s = ctx.shape[0], ctx.shape[1]
        return self.out(ctx.view(b, s, self.heads * self.head_dim))


class Layer(nn.Module):
    """Post-norm transformer layer: x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(c)
        self.attn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)
        self.mlp_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x, mask_bias))
        return self.mlp_norm(x + self.fc2(F.gelu(self.fc1(x))))


class BertEncoder(nn.Module):
    """Token embeddings → ``num_layers`` layers → last hidden state ``[batch, seq, hidden]``."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.config = c
        self.embeddings = Embeddings(c)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embeddings(input_ids, token_type_ids)
        # [b, 1, 1, s]: 0 where attended, a large negative number at padding
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where the mask is 1 (sentence-transformers' mean pooling)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class SentenceEncoder(nn.Module):
    """BERT + mean pooling + L2 normalisation: ``(input_ids, attention_mask) -> [batch, hidden]``."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.bert = BertEncoder(c)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(self.bert(input_ids, attention_mask), attention_mask)
        return F.normalize(pooled, p=2.0, dim=-1)

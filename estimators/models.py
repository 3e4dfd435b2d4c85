"""The model family: a small GPT-style causal transformer over a token vocabulary.

Pre-norm blocks, learned positions, untied embeddings, GELU MLP of 4x width, head size 32.
Parametrised muP-style so one learning rate serves every width (Yang et al., Tensor Programs V):
hidden matrices start with variance 1/fan_in and their Adam LR scales with base_width/width;
embeddings keep a width-independent LR; the readout starts at zero and its logits are scaled by
base_width/width. Zero readout and zero residual projections make the untrained model predict
the uniform distribution exactly, so an untrained learner codes every token at log2(vocab) bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_SIZE = 32
BASE_WIDTH = 64


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 256
    width: int = 64
    depth: int = 2
    context: int = 128

    @property
    def heads(self) -> int:
        return max(1, self.width // HEAD_SIZE)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        w = cfg.width
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(w)
        self.qkv = nn.Linear(w, 3 * w, bias=False)
        self.proj = nn.Linear(w, w, bias=False)
        self.norm2 = nn.LayerNorm(w)
        self.up = nn.Linear(w, 4 * w, bias=False)
        self.down = nn.Linear(4 * w, w, bias=False)

    def attend(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:  # incremental decoding: append this step's keys and values
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None or t > 1)
        return self.proj(y.transpose(1, 2).reshape(b, t, w))

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        x = x + self.attend(self.norm1(x), cache)
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.position = nn.Embedding(cfg.context, cfg.width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.readout = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        self.logit_scale = BASE_WIDTH / cfg.width
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue  # LayerNorm gains and biases keep their defaults
            if name.startswith("embed"):
                nn.init.normal_(p, std=1.0)
            elif name.endswith(("proj.weight", "down.weight")) or name in ("readout.weight",
                                                                            "position.weight"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=1.0 / math.sqrt(p.shape[1]))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, caches: list | None = None, offset: int = 0) -> torch.Tensor:
        """Logits (batch, time, vocab) for token ids (batch, time)."""
        t = idx.shape[1]
        x = self.embed(idx) + self.position(torch.arange(offset, offset + t, device=idx.device))
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.readout(self.norm(x) * self.logit_scale)  # scaled where it is narrow

    def param_groups(self, lr: float, hidden_lr: float) -> list[dict]:
        """Adam groups with muP learning rates: hidden matrices get `hidden_lr` scaled by
        base_width/width; embeddings, readout and norms get `lr` at every width."""
        hidden, other = [], []
        for name, p in self.named_parameters():
            is_hidden = p.dim() == 2 and not name.startswith(("embed", "position", "readout"))
            (hidden if is_hidden else other).append(p)
        return [{"params": hidden, "lr": hidden_lr * BASE_WIDTH / self.cfg.width},
                {"params": other, "lr": lr}]

    @torch.no_grad()
    def sample(self, batch: int, length: int, generator: torch.Generator,
               first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw `batch` sequences of `length` tokens, each starting from `first` (batch,), and
        the logits each token was drawn from (batch, length - 1, vocab): one forward pass per
        token, so scoring the sample again would cost nothing new."""
        out = torch.empty(batch, length, dtype=torch.long, device=first.device)
        out[:, 0] = first
        logits = torch.empty(batch, length - 1, self.cfg.vocab_size, device=first.device)
        caches = [[] for _ in self.blocks]
        for t in range(length - 1):
            logits[:, t] = self.forward(out[:, t:t + 1], caches, offset=t)[:, -1].float()
            probs = torch.softmax(logits[:, t], -1)
            out[:, t + 1] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return out, logits

"""The MLP family past Sequential: MLP-Mixer, gMLP and ResMLP blocks (with a mean-over-tokens
head), as small PyTorch modules on [batch, tokens, channels]. Used by the fixture zoo (small
sizes) and bench/mixer_bench.py (the paper's small Mixer: tokens 196, channels 512, token MLP
256, channel MLP 2048). Needs only torch."""

import torch
from torch import nn


class MixerBlock(nn.Module):
    """LayerNorm, token-mixing MLP over the transposed (batch, channels, tokens) tensor, GELU,
    channel-mixing MLP, residuals; then LayerNorm, mean over tokens and a Linear head."""

    def __init__(self, tokens=6, channels=8, token_hidden=5, channel_hidden=12, classes=3):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.tok1 = nn.Linear(tokens, token_hidden)
        self.tok2 = nn.Linear(token_hidden, tokens)
        self.norm2 = nn.LayerNorm(channels)
        self.ch1 = nn.Linear(channels, channel_hidden)
        self.ch2 = nn.Linear(channel_hidden, channels)
        self.norm = nn.LayerNorm(channels)
        self.head = nn.Linear(channels, classes)
        self.act = nn.GELU()

    def forward(self, x):
        y = self.norm1(x).transpose(1, 2)
        x = x + self.tok2(self.act(self.tok1(y))).transpose(1, 2)
        x = x + self.ch2(self.act(self.ch1(self.norm2(x))))
        return self.head(self.norm(x).mean(dim=1))


class GmlpBlock(nn.Module):
    """gMLP: channel projection with GELU, h.chunk(2, dim=-1), spatial gating unit (LayerNorm,
    Linear over tokens on the transposed tensor, u * v), projection back, residual."""

    def __init__(self, tokens=6, d=8, ffn=16, classes=3):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.proj_in = nn.Linear(d, ffn)
        self.sgu_norm = nn.LayerNorm(ffn // 2)
        self.spatial = nn.Linear(tokens, tokens)
        self.proj_out = nn.Linear(ffn // 2, d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        h = nn.functional.gelu(self.proj_in(self.norm(x)))
        u, v = h.chunk(2, dim=-1)
        v = self.spatial(self.sgu_norm(v).transpose(1, 2)).transpose(1, 2)
        x = x + self.proj_out(u * v)
        return self.head(x.mean(dim=1))


class Affine(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.alpha = nn.Parameter(torch.rand(d) + 0.5)
        self.beta = nn.Parameter(torch.rand(d) - 0.5)

    def forward(self, x):
        return self.alpha * x + self.beta


class ResmlpBlock(nn.Module):
    """ResMLP: Affine, token Linear on the transposed tensor, layer scale, residual; Affine,
    channel MLP with GELU, layer scale, residual."""

    def __init__(self, tokens=6, d=8, hidden=16, classes=3):
        super().__init__()
        self.aff1 = Affine(d)
        self.tok = nn.Linear(tokens, tokens)
        self.aff2 = Affine(d)
        self.ch1 = nn.Linear(d, hidden)
        self.ch2 = nn.Linear(hidden, d)
        self.ls1 = nn.Parameter(torch.full((d,), 0.3))
        self.ls2 = nn.Parameter(torch.full((d,), 0.2))
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = x + self.ls1 * self.tok(self.aff1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.ls2 * self.ch2(nn.functional.gelu(self.ch1(self.aff2(x))))
        return self.head(x.mean(dim=1))

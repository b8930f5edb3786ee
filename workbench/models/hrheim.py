"""HR-Heim-like high-resolution forecaster: a U-Net / Swin-transformer hybrid with per-variable heads.

HR-Heim is the baseline model of the HR-Extreme work (Ran et al., 2025, ICLR, "HR-Extreme: A
High-Resolution Dataset for Extreme Weather Forecasting"; data and index code in the HuskyNian/HR-Extreme
repository, which does not publish the model code). The paper describes it as an improved deep-learning
baseline for the 3-km HRRR grid built in the line of FuXi (a U-Transformer: cube embedding, down-sampling,
a Swin Transformer V2 backbone, up-sampling with a skip connection) with a *shared backbone and
multiple decoder heads*, one per predicted physical variable, which the authors credit for better
errors on both the whole domain and the extreme cases.

What this module builds from that description:

* **Convolutional encoder** on the Lambert grid: a stem convolution at full resolution and two
  stride-2 patch-merging convolutions (to 1/2 and 1/4 resolution), each followed by a residual
  convolution block (GroupNorm, GELU, 3 x 3 convolutions) — the cube/patch embedding and
  down-sampling of FuXi, made convolutional so small-scale storm structure is kept.
* **Swin Transformer V2 bottleneck** at 1/4 resolution: shifted-window attention with scaled cosine
  attention (a learned, clamped logit scale per head), a log-spaced continuous relative position bias
  produced by a small MLP (log-CPB, ``16 * sigmoid``), and residual post-normalisation
  (``x = x + LN(attn(x))``). The regional grid is not periodic: shifted windows are masked.
* **Convolutional decoder** with transposed-convolution up-sampling and skip connections from the
  encoder at 1/2 and full resolution (the U-Net part).
* **Multi-head decoders**: the shared decoder features feed one small convolutional head per output
  variable.
* The network predicts the increment of the normalised state (``residual=True``). Any ``(ny, nx)`` is
  padded to a multiple of 4 (two down-samplings) and, inside the bottleneck, to the window size, then
  cropped back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import DataError
from workbench.models.layers import DropPath, Mlp, crop_2d, pad_to_multiple_2d

__all__ = ["DEFAULT_CONFIG", "HRHeimNet"]

DEFAULT_CONFIG = {
    "channels": [32, 64, 128],
    "bottleneck_depth": 4,
    "heads": 4,
    "window_size": [8, 8],
    "mlp_ratio": 4.0,
    "head_hidden": 16,
    "drop_path": 0.0,
    "drop_rate": 0.0,
    "residual": True,
}

_MASK_VALUE = -1.0e4


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """Two 3 x 3 convolutions with GroupNorm and GELU, plus the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(channels), channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(channels), channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class WindowAttentionV2(nn.Module):
    """Swin V2 window attention: cosine attention with a learned scale and a log-spaced CPB."""

    def __init__(self, dim: int, heads: int, window: Sequence[int], cpb_hidden: int = 64) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"Attention dim {dim} is not divisible by {heads} heads.")
        self.heads = heads
        self.window = (int(window[0]), int(window[1]))
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(heads, 1, 1)))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, cpb_hidden), nn.ReLU(inplace=True), nn.Linear(cpb_hidden, heads, bias=False)
        )
        wh, ww = self.window
        rel_h = torch.arange(-(wh - 1), wh, dtype=torch.float32)
        rel_w = torch.arange(-(ww - 1), ww, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(rel_h, rel_w, indexing="ij"), dim=-1)  # (2wh-1, 2ww-1, 2)
        table[..., 0] /= max(wh - 1, 1)
        table[..., 1] /= max(ww - 1, 1)
        table *= 8
        table = torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)
        self.register_buffer("coords_table", table.reshape(-1, 2), persistent=False)
        gh, gw = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")
        gh, gw = gh.reshape(-1), gw.reshape(-1)
        index = (gh[:, None] - gh[None, :] + wh - 1) * (2 * ww - 1) + (gw[:, None] - gw[None, :] + ww - 1)
        self.register_buffer("position_index", index.reshape(-1), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``(B, n_windows, N, C)``; ``mask``: ``(n_windows, N, N)`` or None."""
        b, n_win, n, c = x.shape
        hd = c // self.heads
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = (
            F.linear(x, self.qkv.weight, bias)
            .reshape(b, n_win, n, 3, self.heads, hd)
            .permute(3, 0, 1, 4, 2, 5)
        )
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
        q = F.normalize(qkv[0], dim=-1) * scale
        k = F.normalize(qkv[1], dim=-1)
        v = qkv[2]
        cpb = self.cpb_mlp(self.coords_table)[self.position_index].reshape(n, n, self.heads).permute(2, 0, 1)
        attn_bias = 16 * torch.sigmoid(cpb)  # (heads, N, N)
        # 4-D attention for the fused kernels: without a mask windows join the batch, with the shift
        # mask they join the heads so the per-window mask broadcasts over the batch without a copy
        if mask is None:
            q, k, v = (t.reshape(b * n_win, self.heads, n, hd) for t in (q, k, v))
            attn_bias = attn_bias[None]
        else:
            q, k, v = (t.reshape(b, n_win * self.heads, n, hd) for t in (q, k, v))
            attn_bias = (attn_bias[None] + mask[:, None]).reshape(1, n_win * self.heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias.to(q.dtype), scale=1.0)
        out = out.reshape(b, n_win, self.heads, n, hd)
        return self.proj(out.transpose(2, 3).reshape(b, n_win, n, c))


class SwinV2Block(nn.Module):
    """Shifted-window Swin V2 block on a ``(B, H, W, C)`` grid with residual post-normalisation."""

    def __init__(
        self, dim: int, heads: int, window: Sequence[int], shift: bool, mlp_ratio: float, drop_path: float,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.window = (int(window[0]), int(window[1]))
        self.shift = bool(shift)
        self.attn = WindowAttentionV2(dim, heads, self.window)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)
        self._cache: dict = {}

    def _mask(self, hp: int, wp: int, device) -> torch.Tensor | None:
        if not self.shift:
            return None
        key = (hp, wp, str(device))
        if key not in self._cache:
            wh, ww = self.window
            sh, sw = wh // 2, ww // 2
            labels = torch.zeros(hp, wp)
            count = 0
            for hs in (slice(0, hp - wh), slice(hp - wh, hp - sh), slice(hp - sh, hp)):
                for ws in (slice(0, wp - ww), slice(wp - ww, wp - sw), slice(wp - sw, wp)):
                    labels[hs, ws] = count
                    count += 1
            win = labels.reshape(hp // wh, wh, wp // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
            self._cache[key] = torch.where(win[:, :, None] != win[:, None, :], _MASK_VALUE, 0.0).to(device)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        wh, ww = self.window
        shortcut = x
        ph, pw = (-h) % wh, (-w) % ww
        if ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        if self.shift:
            x = torch.roll(x, shifts=(-(wh // 2), -(ww // 2)), dims=(1, 2))
        windows = (
            x.reshape(b, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, -1, wh * ww, c)
        )
        windows = self.attn(windows, self._mask(hp, wp, x.device))
        x = windows.reshape(b, hp // wh, wp // ww, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if self.shift:
            x = torch.roll(x, shifts=(wh // 2, ww // 2), dims=(1, 2))
        x = shortcut + self.drop_path(self.norm1(x[:, :h, :w]))
        return x + self.drop_path(self.norm2(self.mlp(x)))


class HRHeimNet(nn.Module):
    """The HR-Heim-like network: ``(B, C_state + C_forcing, ny, nx)`` -> ``(B, C_state, ny, nx)``.

    Parameters
    ----------
    variables : sequence of str
        State channels (each gets its own decoder head).
    forcings : sequence of str
        Extra input channels (time-of-day forcings).
    channels : (int, int, int)
        Widths at full, 1/2 and 1/4 resolution (the bottleneck width is the last).
    bottleneck_depth, heads, window_size, mlp_ratio
        Swin V2 bottleneck.
    head_hidden : int
        Width of each per-variable decoder head.
    drop_rate : float
        Dropout in the bottleneck's MLPs (what MC dropout samples at inference).
    drop_path : float
        Stochastic depth in the bottleneck.
    residual : bool
        Predict the increment of the normalised state.
    """

    def __init__(
        self,
        variables: Sequence[str],
        forcings: Sequence[str] = (),
        channels: Sequence[int] = (32, 64, 128),
        bottleneck_depth: int = 4,
        heads: int = 4,
        window_size: Sequence[int] = (8, 8),
        mlp_ratio: float = 4.0,
        head_hidden: int = 16,
        drop_path: float = 0.0,
        residual: bool = True,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.variables = tuple(variables)
        self.forcings = tuple(forcings)
        self.residual = bool(residual)
        c0, c1, c2 = (int(c) for c in channels)
        n_in = len(self.variables) + len(self.forcings)
        self.stem = nn.Conv2d(n_in, c0, 3, padding=1)
        self.enc0 = ResBlock(c0)
        self.down1 = nn.Conv2d(c0, c1, 2, stride=2)
        self.enc1 = ResBlock(c1)
        self.down2 = nn.Conv2d(c1, c2, 2, stride=2)
        rates = torch.linspace(0, float(drop_path), int(bottleneck_depth)).tolist()
        self.bottleneck = nn.ModuleList(
            SwinV2Block(
                c2, int(heads), window_size, shift=(i % 2 == 1), mlp_ratio=mlp_ratio, drop_path=rates[i],
                drop_rate=float(drop_rate),
            )
            for i in range(int(bottleneck_depth))
        )
        self.up2 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.fuse1 = nn.Conv2d(2 * c1, c1, 1)
        self.dec1 = ResBlock(c1)
        self.up1 = nn.ConvTranspose2d(c1, c0, 2, stride=2)
        self.fuse0 = nn.Conv2d(2 * c0, c0, 1)
        self.dec0 = ResBlock(c0)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c0, head_hidden, 3, padding=1), nn.GELU(), nn.Conv2d(head_hidden, 1, 1))
            for _ in self.variables
        )

    def forward(
        self, x: torch.Tensor, lead_hours: torch.Tensor | None = None, variables: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Next normalised state; ``lead_hours`` is accepted for a common signature and ignored."""
        if variables is not None and tuple(variables) != self.variables + self.forcings:
            raise DataError("The HR-Heim-like network needs all of its variables, in its own order.")
        n_state = len(self.variables)
        if x.shape[1] != n_state + len(self.forcings):
            raise DataError(
                f"Expected {n_state} state + {len(self.forcings)} forcing channels, got {x.shape[1]}."
            )
        xp, size = pad_to_multiple_2d(x, (4, 4))
        s0 = self.enc0(self.stem(xp))
        s1 = self.enc1(self.down1(s0))
        h = self.down2(s1).permute(0, 2, 3, 1)  # (B, H/4, W/4, C)
        for block in self.bottleneck:
            h = block(h)
        h = self.up2(h.permute(0, 3, 1, 2))
        h = self.dec1(self.fuse1(torch.cat([h, s1], dim=1)))
        h = self.up1(h)
        h = self.dec0(self.fuse0(torch.cat([h, s0], dim=1)))
        out = torch.cat([head(h) for head in self.heads], dim=1)
        out = crop_2d(out, size).to(x.dtype)
        return x[:, :n_state] + out if self.residual else out

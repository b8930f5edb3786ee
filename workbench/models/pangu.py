"""Pangu-like 3-D Earth-specific transformer.

What this follows from Pangu-Weather (Bi et al., 2023, Nature 619, "Accurate medium-range global weather
forecasting with 3D neural networks"; the authors' released ``pseudocode.py``):

* **3-D token grid.** Upper-air fields (here ``z, t, u, v`` on 850 and 500 hPa) form a cube
  ``(field, level, y, x)`` embedded by a ``Conv3d`` with patch ``(pz, ph, pw)``; surface fields are
  embedded by a ``Conv2d`` with patch ``(ph, pw)`` (Pangu appends constant masks there; we append the
  time-of-day forcings) and stacked with the upper-air tokens along the level axis, giving one token grid
  ``(Z, Ht, Wt)`` with the surface at ``Z = 0``.
* **Earth-specific block.** 3-D windowed self-attention (window ``(wz, wh, ww)``; Pangu uses
  ``(2, 6, 12)``), shifted by half a window every second block with Swin's attention mask so that
  tokens from non-adjacent regions do not attend to each other; the longitude axis wraps around without
  a mask on a global grid (``periodic_x``) and is masked on a regional grid such as the HRRR Lambert
  domain. Normalisation after each branch as in the pseudocode: ``x = x + LN(attn(x))``,
  ``x = x + LN(mlp(x))``.
* **Earth-specific positional bias** replacing Swin's relative bias: a learned table of shape
  ``((2 ww - 1) * wh**2 * wz**2, n_window_types, heads)`` indexed by the *absolute* level and latitude
  positions of query and key inside the window and their *relative* longitude offset, with one set of
  parameters per window type, a type being the window's absolute position in level and latitude
  (its row; on the Lambert grid, the ``y`` row). On a grid of another size the window rows map onto
  the trained rows proportionally, so the bias keeps its geographic meaning.
* **Encoder-decoder.** Layer 1 (dim ``C``) -> down-sample (merge 2 x 2 tokens in ``y, x``, LayerNorm,
  linear to ``2C``) -> layers 2 and 3 (dim ``2C``) -> up-sample (linear to ``4C``, re-arrange,
  crop, LayerNorm, linear) -> layer 4 (dim ``C``) -> concatenate with the layer-1 output (skip) ->
  patch recovery by transposed convolutions into the upper-air cube and the surface fields, cropped
  back to the input grid. Pangu's depths are ``(2, 6, 6, 2)`` with ``C = 192``; the defaults here are
  small so the model trains on the sample in minutes.
* **Time steps.** Each network has one step (1, 3, 6 or 24 h in Pangu); several are combined by
  hierarchical temporal aggregation (:mod:`workbench.models.hta`).

Departures: the network predicts the increment of the normalised state (``residual=True``), which trains
faster on small data; pressure-level fields absent from the data (the sample has ``z500, t850, u850,
v850`` only) occupy their slot in the cube as zeros (the normalised mean) and are not predicted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import DataError
from workbench.lexicon import info
from workbench.models.layers import DropPath, Mlp

__all__ = ["DEFAULT_CONFIG", "PanguNet", "earth_position_index"]

#: Hyper-parameters of the default (small) Pangu-like network; ``variables`` and ``forcings`` come
#: from the model configuration.
DEFAULT_CONFIG = {
    "levels": [850, 500],
    "upper_fields": ["z", "t", "u", "v"],
    "patch_size": [1, 4, 4],
    "embed_dim": 48,
    "depths": [2, 2, 2, 2],
    "heads": [3, 6, 6, 3],
    "window_size": [2, 4, 8],
    "grid_shape": [133, 225],
    "mlp_ratio": 4.0,
    "drop_path": 0.0,
    "drop_rate": 0.0,
    "periodic_x": False,
    "residual": True,
}

_MASK_VALUE = -1.0e4


def earth_position_index(window: Sequence[int]) -> torch.Tensor:
    """Index into the Earth-specific bias table for every (query, key) pair of a window.

    Absolute level and latitude positions of both tokens, relative longitude offset (Pangu's
    ``_construct_index``). Returns a flat ``LongTensor`` of length ``N * N``, ``N = wz * wh * ww``.
    """
    wz, wh, ww = (int(w) for w in window)
    z = torch.arange(wz)
    h = torch.arange(wh)
    w = torch.arange(ww)
    gz, gh, gw = torch.meshgrid(z, h, w, indexing="ij")
    gz, gh, gw = gz.reshape(-1), gh.reshape(-1), gw.reshape(-1)
    # pair index of absolute positions: query * size + key, so each pair has its own parameter
    z_pair = gz[:, None] * wz + gz[None, :]
    h_pair = gh[:, None] * wh + gh[None, :]
    w_rel = gw[:, None] - gw[None, :] + (ww - 1)
    index = z_pair * (wh * wh * (2 * ww - 1)) + h_pair * (2 * ww - 1) + w_rel
    return index.reshape(-1)


def _window_rows(n_tokens: int, window: int) -> int:
    return math.ceil(n_tokens / window)


class EarthAttention3D(nn.Module):
    """3-D window attention with the Earth-specific positional bias."""

    def __init__(self, dim: int, heads: int, window: Sequence[int], n_z_windows: int, n_h_windows: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"Attention dim {dim} is not divisible by {heads} heads.")
        self.heads = heads
        self.window = tuple(int(w) for w in window)
        self.n_z_windows = int(n_z_windows)
        self.n_h_windows = int(n_h_windows)
        wz, wh, ww = self.window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        n_types = self.n_z_windows * self.n_h_windows
        self.earth_specific_bias = nn.Parameter(torch.zeros((2 * ww - 1) * wh * wh * wz * wz, n_types, heads))
        nn.init.trunc_normal_(self.earth_specific_bias, std=0.02)
        self.register_buffer("position_index", earth_position_index(self.window), persistent=False)

    def forward(self, x: torch.Tensor, window_type: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x``: ``(B, n_windows, N, C)``; ``window_type``: ``(n_windows,)``; ``mask``: ``(n_windows, N, N)``."""
        b, n_win, n, c = x.shape
        hd = c // self.heads
        # windows x heads share one axis so the attention is 4-D, which the fused (memory-efficient)
        # kernels require; the bias then broadcasts over the batch without being copied
        qkv = self.qkv(x).reshape(b, n_win, n, 3, self.heads, hd).permute(3, 0, 1, 4, 2, 5)
        q, k, v = (t.reshape(b, n_win * self.heads, n, hd) for t in qkv.unbind(0))
        n_types = self.earth_specific_bias.shape[1]
        bias = self.earth_specific_bias[self.position_index].reshape(n, n, n_types, self.heads)
        bias = bias.permute(2, 3, 0, 1)[window_type]  # (n_windows, heads, N, N)
        if mask is not None:
            bias = bias + mask[:, None]
        bias = bias.reshape(1, n_win * self.heads, n, n).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.reshape(b, n_win, self.heads, n, hd).transpose(2, 3).reshape(b, n_win, n, c)
        return self.proj(out)


class EarthSpecificBlock(nn.Module):
    """Window attention + MLP on a ``(B, Z, H, W, C)`` token grid, optionally with shifted windows."""

    def __init__(
        self,
        dim: int,
        heads: int,
        window: Sequence[int],
        shift: bool,
        n_z_windows: int,
        n_h_windows: int,
        periodic_x: bool,
        mlp_ratio: float,
        drop_path: float,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.window = tuple(int(w) for w in window)
        self.shift = bool(shift)
        self.periodic_x = bool(periodic_x)
        self.n_h_windows = int(n_h_windows)
        self.attn = EarthAttention3D(dim, heads, window, n_z_windows, n_h_windows)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop_rate)
        self.drop_path = DropPath(drop_path)
        self._cache: dict = {}

    def _window_meta(self, zp: int, hp: int, wp: int, device) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (zp, hp, wp, str(device))
        if key in self._cache:
            return self._cache[key]
        wz, wh, ww = self.window
        nz, nh, nw = zp // wz, hp // wh, wp // ww
        # window type = (level-window, latitude-window row mapped onto the trained rows)
        rows = torch.clamp(
            ((torch.arange(nh) + 0.5) * self.n_h_windows / nh).long(), max=self.n_h_windows - 1
        )
        types = torch.arange(nz)[:, None] * self.n_h_windows + rows[None, :]  # (nz, nh)
        window_type = types[:, :, None].expand(nz, nh, nw).reshape(-1).to(device)
        mask = None
        if self.shift:
            labels = torch.zeros(zp, hp, wp)
            count = 0
            sz, sh, sw = wz // 2, wh // 2, ww // 2

            def spans(size: int, win: int, shift: int, masked: bool):
                if not masked or shift == 0:
                    return [slice(0, size)]
                return [slice(0, size - win), slice(size - win, size - shift), slice(size - shift, size)]

            for zs in spans(zp, wz, sz, True):
                for hs in spans(hp, wh, sh, True):
                    for ws in spans(wp, ww, sw, not self.periodic_x):
                        labels[zs, hs, ws] = count
                        count += 1
            win_labels = _partition(labels[None, ..., None], self.window).reshape(-1, wz * wh * ww)
            diff = win_labels[:, :, None] != win_labels[:, None, :]
            mask = torch.where(diff, _MASK_VALUE, 0.0).to(device)
        self._cache[key] = (window_type, mask)
        return window_type, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, z, h, w, c = x.shape
        wz, wh, ww = self.window
        pz, ph, pw = (-z) % wz, (-h) % wh, (-w) % ww
        shortcut = x
        if pz or ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph, 0, pz))
        zp, hp, wp = z + pz, h + ph, w + pw
        shifts = (wz // 2, wh // 2, ww // 2)
        if self.shift:
            x = torch.roll(x, shifts=(-shifts[0], -shifts[1], -shifts[2]), dims=(1, 2, 3))
        window_type, mask = self._window_meta(zp, hp, wp, x.device)
        windows = _partition(x, self.window)  # (B, n_windows, N, C)
        windows = self.attn(windows, window_type, mask)
        x = _merge(windows, self.window, (zp, hp, wp))
        if self.shift:
            x = torch.roll(x, shifts=shifts, dims=(1, 2, 3))
        x = x[:, :z, :h, :w]
        x = shortcut + self.drop_path(self.norm1(x))
        return x + self.drop_path(self.norm2(self.mlp(x)))


def _partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    b, z, h, w, c = x.shape
    wz, wh, ww = window
    x = x.reshape(b, z // wz, wz, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, -1, wz * wh * ww, c)


def _merge(windows: torch.Tensor, window: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    b, _, _, c = windows.shape
    wz, wh, ww = window
    z, h, w = size
    x = windows.reshape(b, z // wz, h // wh, w // ww, wz, wh, ww, c)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, z, h, w, c)


class EarthSpecificLayer(nn.Module):
    """A stack of Earth-specific blocks, shifting windows in every second block."""

    def __init__(self, depth: int, dim: int, heads: int, drop_paths: Sequence[float], **kw) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            EarthSpecificBlock(dim, heads, shift=(i % 2 == 1), drop_path=drop_paths[i], **kw)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class DownSample(nn.Module):
    """Merge 2 x 2 tokens in (y, x): LayerNorm(4C) then a linear map to 2C (Pangu's DownSample)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.linear = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, z, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        h2, w2 = (h + h % 2) // 2, (w + w % 2) // 2
        x = x.reshape(b, z, h2, 2, w2, 2, c).permute(0, 1, 2, 4, 3, 5, 6).reshape(b, z, h2, w2, 4 * c)
        return self.linear(self.norm(x))


class UpSample(nn.Module):
    """Linear to 4 x C_out, re-arrange to double (y, x), crop, LayerNorm and mix (Pangu's UpSample)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(in_dim, 4 * out_dim, bias=False)
        self.linear2 = nn.Linear(out_dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, z, h, w, _ = x.shape
        x = self.linear1(x)
        c = x.shape[-1] // 4
        x = x.reshape(b, z, h, w, 2, 2, c).permute(0, 1, 2, 4, 3, 5, 6).reshape(b, z, 2 * h, 2 * w, c)
        x = x[:, :, : size[0], : size[1]]
        return self.linear2(self.norm(x))


class PanguNet(nn.Module):
    """The Pangu-like network: normalised state ``(B, C_in, ny, nx)`` -> next state ``(B, C_out, ny, nx)``.

    Parameters
    ----------
    variables : sequence of str
        State channels, canonical names; names ``<field><level>`` with ``field`` in ``upper_fields`` and
        ``level`` in ``levels`` go into the upper-air cube, all others are surface fields.
    forcings : sequence of str
        Extra input channels appended after the state (time-of-day), embedded with the surface.
    levels, upper_fields, patch_size, embed_dim, depths, heads, window_size, grid_shape, mlp_ratio,
    drop_path, drop_rate, periodic_x, residual
        ``drop_rate`` is the dropout of the transformer MLPs (what MC dropout samples at inference).
        See :data:`DEFAULT_CONFIG` and the module docstring. ``grid_shape`` is the grid the
        Earth-specific bias is laid out for (the training grid).
    """

    def __init__(
        self,
        variables: Sequence[str],
        forcings: Sequence[str] = (),
        levels: Sequence[int] = (850, 500),
        upper_fields: Sequence[str] = ("z", "t", "u", "v"),
        patch_size: Sequence[int] = (1, 4, 4),
        embed_dim: int = 48,
        depths: Sequence[int] = (2, 2, 2, 2),
        heads: Sequence[int] = (3, 6, 6, 3),
        window_size: Sequence[int] = (2, 4, 8),
        grid_shape: Sequence[int] = (133, 225),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        drop_rate: float = 0.0,
        periodic_x: bool = False,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.variables = tuple(variables)
        self.forcings = tuple(forcings)
        self.levels = tuple(int(lv) for lv in levels)
        self.upper_fields = tuple(upper_fields)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.residual = bool(residual)
        if len(depths) != 4 or len(heads) != 4:
            raise ValueError(
                "Pangu-like network needs four depths and four head counts (encoder 2, decoder 2)."
            )

        upper_chan, upper_slot, surface_chan = [], [], []
        for i, name in enumerate(self.variables):
            try:
                var = info(name)
            except DataError:
                var = None
            field = name[: -len(str(var.level))] if var is not None and var.level is not None else None
            if field in self.upper_fields and var.level in self.levels:
                upper_chan.append(i)
                upper_slot.append(
                    self.upper_fields.index(field) * len(self.levels) + self.levels.index(var.level)
                )
            else:
                surface_chan.append(i)
        if not surface_chan:
            raise ValueError("The Pangu-like network needs at least one surface variable.")
        self.register_buffer("upper_chan", torch.tensor(upper_chan, dtype=torch.long), persistent=False)
        self.register_buffer("upper_slot", torch.tensor(upper_slot, dtype=torch.long), persistent=False)
        self.register_buffer("surface_chan", torch.tensor(surface_chan, dtype=torch.long), persistent=False)
        self.has_upper = bool(upper_chan)

        n_fields, n_levels = len(self.upper_fields), len(self.levels)
        pz, ph, pw = self.patch_size
        c = int(embed_dim)
        self.conv_surface = nn.Conv2d(len(surface_chan) + len(self.forcings), c, (ph, pw), stride=(ph, pw))
        z_tokens = 1
        if self.has_upper:
            self.conv_upper = nn.Conv3d(n_fields, c, self.patch_size, stride=self.patch_size)
            z_tokens += math.ceil(n_levels / pz)

        wz, wh, ww = (int(w) for w in window_size)
        ht = math.ceil(int(grid_shape[0]) / ph)
        n_z_windows = _window_rows(z_tokens, wz)
        common = {
            "window": (wz, wh, ww),
            "n_z_windows": n_z_windows,
            "periodic_x": periodic_x,
            "mlp_ratio": mlp_ratio,
            "drop_rate": float(drop_rate),
        }
        rates = torch.linspace(0, float(drop_path), sum(depths)).tolist()
        d0, d1, d2, d3 = (int(d) for d in depths)
        self.layer1 = EarthSpecificLayer(
            d0, c, int(heads[0]), rates[:d0], n_h_windows=_window_rows(ht, wh), **common
        )
        self.downsample = DownSample(c)
        h2 = _window_rows(math.ceil(ht / 2), wh)
        self.layer2 = EarthSpecificLayer(
            d1, 2 * c, int(heads[1]), rates[d0 : d0 + d1], n_h_windows=h2, **common
        )
        self.layer3 = EarthSpecificLayer(
            d2, 2 * c, int(heads[2]), rates[d0 + d1 : d0 + d1 + d2], n_h_windows=h2, **common
        )
        self.upsample = UpSample(2 * c, c)
        self.layer4 = EarthSpecificLayer(
            d3, c, int(heads[3]), rates[d0 + d1 + d2 :], n_h_windows=_window_rows(ht, wh), **common
        )
        self.recover_surface = nn.ConvTranspose2d(2 * c, len(surface_chan), (ph, pw), stride=(ph, pw))
        if self.has_upper:
            self.recover_upper = nn.ConvTranspose3d(2 * c, n_fields, self.patch_size, stride=self.patch_size)

    def forward(
        self, x: torch.Tensor, lead_hours: torch.Tensor | None = None, variables: Sequence[str] | None = None
    ) -> torch.Tensor:
        """Map ``(B, len(variables) + len(forcings), ny, nx)`` to ``(B, len(variables), ny, nx)``.

        ``lead_hours`` is accepted for a common signature and ignored: the step is fixed per network.
        """
        if variables is not None and tuple(variables) != self.variables + self.forcings:
            raise DataError("The Pangu-like network needs all of its variables, in its own order.")
        n_state = len(self.variables)
        if x.shape[1] != n_state + len(self.forcings):
            raise DataError(
                f"Expected {n_state} state + {len(self.forcings)} forcing channels, got {x.shape[1]}."
            )
        b, _, ny, nx = x.shape
        pz, ph, pw = self.patch_size
        state = x[:, :n_state]
        surface = torch.cat([state[:, self.surface_chan], x[:, n_state:]], dim=1)
        py, px = (-ny) % ph, (-nx) % pw
        surface = F.pad(surface, (0, px, 0, py))
        tokens = [self.conv_surface(surface)[:, :, None]]  # (B, C, 1, Ht, Wt)
        n_levels = len(self.levels)
        if self.has_upper:
            cube = state.new_zeros(b, len(self.upper_fields) * n_levels, ny, nx)
            cube[:, self.upper_slot] = state[:, self.upper_chan]
            cube = cube.reshape(b, len(self.upper_fields), n_levels, ny, nx)
            cube = F.pad(cube, (0, px, 0, py, 0, (-n_levels) % pz))
            tokens.append(self.conv_upper(cube))
        t = torch.cat(tokens, dim=2).permute(0, 2, 3, 4, 1)  # (B, Z, Ht, Wt, C)

        t = self.layer1(t)
        skip = t
        t = self.layer2(self.downsample(t))
        t = self.layer3(t)
        t = self.layer4(self.upsample(t, skip.shape[2:4]))
        t = torch.cat([skip, t], dim=-1).permute(0, 4, 1, 2, 3)  # (B, 2C, Z, Ht, Wt)

        out = state.new_empty(b, n_state, ny, nx)
        out[:, self.surface_chan] = self.recover_surface(t[:, :, 0])[:, :, :ny, :nx].to(out.dtype)
        if self.has_upper:
            upper = self.recover_upper(t[:, :, 1:])[:, :, :n_levels, :ny, :nx]
            upper = upper.reshape(b, len(self.upper_fields) * n_levels, ny, nx)
            out[:, self.upper_chan] = upper[:, self.upper_slot].to(out.dtype)
        return state + out if self.residual else out

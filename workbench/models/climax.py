"""ClimaX-like transformer with variable tokenization and variable aggregation.

What this follows from ClimaX (Nguyen et al., 2023, ICML, "ClimaX: A foundation model for weather and
climate"; the released ``src/climax/arch.py``):

* **Variable tokenization.** Each input variable is patched and embedded with its own ``Conv2d(1, D,
  p, p)`` (``token_embeds[i].proj``), so a data set with any subset of the variables can be tokenized.
* **Variable identity.** A learned embedding per variable (``var_embed``, initialised with 1-D
  sine-cosine codes) is added to that variable's tokens.
* **Variable aggregation.** At every patch position a learned query (``var_query``) attends over the
  tokens of the variables present with one multi-head cross-attention (``var_agg``), giving one token
  per patch: sequence length no longer grows with the number of variables.
* **Position and lead time.** A learned positional embedding per patch (``pos_embed``, initialised with
  2-D sine-cosine codes; bilinearly interpolated for another grid size, as ClimaX's
  ``interpolate_pos_embed`` does) and a lead-time embedding ``lead_time_embed = Linear(1, D)`` of the
  lead time in units of 100 hours (ClimaX's scaling). Here a GELU + Linear follows it
  (``lead_time_mlp``, on by default; off when loading a released ClimaX checkpoint).
* **ViT backbone and head.** Pre-norm transformer blocks with the timm ``Block`` key layout
  (``norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2``), a final ``norm``, and a head of
  ``decoder_depth`` Linear+GELU pairs then ``Linear(D, V * p * p)`` unpatchified to all variables.

Because of this key layout a released ClimaX ``state_dict`` maps onto the module one to one
(:mod:`workbench.models.climax_checkpoint`).

Departures: when used as a one-step forecaster in the workbench the head predicts the increment of
the normalised state (``residual=True``; a variable missing from the input counts as zero, its
normalised mean); inputs whose size is not a multiple of the patch are zero-padded and cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import DataError
from workbench.models.layers import DropPath, Mlp, crop_2d, pad_to_multiple_2d, sincos_1d, sincos_2d

__all__ = ["DEFAULT_CONFIG", "ClimaXNet"]

DEFAULT_CONFIG = {
    "patch_size": 4,
    "embed_dim": 128,
    "depth": 4,
    "decoder_depth": 2,
    "num_heads": 4,
    "mlp_ratio": 4.0,
    "drop_path": 0.0,
    "drop_rate": 0.0,
    "grid_shape": [133, 225],
    "lead_time_mlp": True,
    "lead_time_scale": 0.01,
    "residual": True,
}


#: Sequences x heads per call of the variable aggregation's attention (below CUDA's grid limit).
_AGG_SEQUENCES_PER_CALL = 32768


class PatchEmbed(nn.Module):
    """One variable's patch embedding (the ``timm`` PatchEmbed key layout: ``proj``)."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, L, D)


class Attention(nn.Module):
    """Multi-head self-attention (``timm`` layout: ``qkv``, ``proj``)."""

    def __init__(self, dim: int, heads: int, drop: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.drop(self.proj(out.transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    """Pre-norm transformer block (``timm`` layout)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ClimaXNet(nn.Module):
    """The ClimaX-like network.

    Parameters
    ----------
    variables : sequence of str
        The variables it forecasts (its state), canonical names.
    forcings : sequence of str
        Input-only variables (time-of-day forcings here; land-sea mask, orography in ClimaX), tokenized
        like the others and listed after the state in ``default_vars``.
    patch_size, embed_dim, depth, decoder_depth, num_heads, mlp_ratio, drop_path, drop_rate
        As in ClimaX.
    grid_shape : (int, int)
        The grid ``pos_embed`` is laid out for.
    lead_time_mlp : bool
        Follow ``lead_time_embed`` with GELU + Linear.
    lead_time_scale : float
        Factor from lead hours to the embedding's input (ClimaX: 1/100).
    residual : bool
        Predict the increment of the normalised state.
    """

    def __init__(
        self,
        variables: Sequence[str],
        forcings: Sequence[str] = (),
        patch_size: int = 4,
        embed_dim: int = 128,
        depth: int = 4,
        decoder_depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        drop_rate: float = 0.0,
        grid_shape: Sequence[int] = (133, 225),
        lead_time_mlp: bool = True,
        lead_time_scale: float = 0.01,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.variables = tuple(variables)
        self.forcings = tuple(forcings)
        self.default_vars = self.variables + self.forcings
        self.var_map = {v: i for i, v in enumerate(self.default_vars)}
        self.patch_size = int(patch_size)
        self.grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
        self.token_grid = tuple(-(-n // self.patch_size) for n in self.grid_shape)
        self.lead_time_scale = float(lead_time_scale)
        self.residual = bool(residual)
        d = int(embed_dim)
        if d % num_heads:
            raise ValueError(f"embed_dim {d} is not divisible by num_heads {num_heads}.")

        self.token_embeds = nn.ModuleList(PatchEmbed(self.patch_size, d) for _ in self.default_vars)
        self.var_embed = nn.Parameter(torch.zeros(1, len(self.default_vars), d))
        self.var_query = nn.Parameter(torch.zeros(1, 1, d))
        self.var_agg = nn.MultiheadAttention(d, num_heads, batch_first=True)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.token_grid[0] * self.token_grid[1], d))
        self.lead_time_embed = nn.Linear(1, d)
        self.lead_time_mlp = nn.Sequential(nn.GELU(), nn.Linear(d, d)) if lead_time_mlp else None
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, float(drop_path), int(depth)).tolist()
        self.blocks = nn.ModuleList(
            Block(d, num_heads, mlp_ratio, drop_rate, rates[i]) for i in range(int(depth))
        )
        self.norm = nn.LayerNorm(d)
        head: list[nn.Module] = []
        for _ in range(int(decoder_depth)):
            head += [nn.Linear(d, d), nn.GELU()]
        head.append(nn.Linear(d, len(self.default_vars) * self.patch_size**2))
        self.head = nn.Sequential(*head)
        self._init_weights()

    def _init_weights(self) -> None:
        self.pos_embed.data.copy_(
            torch.from_numpy(sincos_2d(self.pos_embed.shape[-1], *self.token_grid)).float()[None]
        )
        var = sincos_1d(self.var_embed.shape[-1], torch.arange(len(self.default_vars)).numpy())
        self.var_embed.data.copy_(torch.from_numpy(var).float()[None])
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for embed in self.token_embeds:
            w = embed.proj.weight.data
            nn.init.trunc_normal_(w.view(w.shape[0], -1), std=0.02)

    def var_ids(self, variables: Sequence[str]) -> list[int]:
        """Indices of ``variables`` in ``default_vars``; unknown names raise DataError."""
        unknown = [v for v in variables if v not in self.var_map]
        if unknown:
            raise DataError(
                f"The ClimaX-like model does not know variables {unknown}; it knows {list(self.var_map)}."
            )
        if len(set(variables)) != len(variables):
            raise DataError(f"Variables listed twice: {list(variables)}.")
        return [self.var_map[v] for v in variables]

    def _pos_embed(self, ht: int, wt: int) -> torch.Tensor:
        if (ht, wt) == self.token_grid:
            return self.pos_embed
        grid = self.pos_embed.reshape(1, *self.token_grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(ht, wt), mode="bilinear", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, ht * wt, -1)

    def forward_encoder(self, x: torch.Tensor, lead_hours: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """Tokens ``(B, L, D)`` after aggregation, embeddings and the transformer blocks."""
        b = x.shape[0]
        tokens = torch.stack([self.token_embeds[i](x[:, j : j + 1]) for j, i in enumerate(ids)], dim=1)
        tokens = tokens + self.var_embed[:, ids].unsqueeze(2)  # (B, V, L, D)
        n_var, length, d = tokens.shape[1:]
        tokens = tokens.permute(0, 2, 1, 3).reshape(b * length, n_var, d)
        query = self.var_query.expand(b * length, 1, d)
        # Every patch of every state is one aggregation sequence; fused GPU attention kernels launch one
        # grid row per sequence and head and fail beyond the grid's limit (65535), so go in slices.
        step = max(1, _AGG_SEQUENCES_PER_CALL // self.var_agg.num_heads)
        agg = torch.cat([
            self.var_agg(query[i : i + step], tokens[i : i + step], tokens[i : i + step], need_weights=False)[0]
            for i in range(0, b * length, step)
        ])
        h = agg.reshape(b, length, d)
        ht, wt = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        h = h + self._pos_embed(ht, wt)
        lead = self.lead_time_embed((lead_hours.to(h.dtype) * self.lead_time_scale).reshape(b, 1))
        if self.lead_time_mlp is not None:
            lead = self.lead_time_mlp(lead)
        h = self.pos_drop(h + lead[:, None, :])
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def unpatchify(self, y: torch.Tensor, ht: int, wt: int) -> torch.Tensor:
        """``(B, L, V * p * p)`` -> ``(B, V, ht * p, wt * p)``."""
        p, c = self.patch_size, len(self.default_vars)
        y = y.reshape(y.shape[0], ht, wt, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", y).reshape(y.shape[0], c, ht * p, wt * p)

    def forward(
        self,
        x: torch.Tensor,
        lead_hours: torch.Tensor | float | None = None,
        variables: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Forecast all state variables from any subset of ``default_vars``.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, len(variables), ny, nx)``, normalised.
        lead_hours : tensor of shape (B,) or float
            Lead time of the forecast in hours (required: ClimaX is lead-time conditioned).
        variables : sequence of str, optional
            Names of the channels of ``x`` (default: all state variables then forcings).

        Returns
        -------
        torch.Tensor
            ``(B, len(self.variables), ny, nx)``.
        """
        variables = self.default_vars if variables is None else tuple(variables)
        if x.shape[1] != len(variables):
            raise DataError(
                f"Input has {x.shape[1]} channels but {len(variables)} variable names were given."
            )
        if lead_hours is None:
            raise DataError("The ClimaX-like network needs lead_hours (the forecast lead time in hours).")
        b, _, ny, nx = x.shape
        lead = torch.as_tensor(lead_hours, device=x.device, dtype=torch.float32).reshape(-1).expand(b)
        ids = self.var_ids(variables)
        xp, size = pad_to_multiple_2d(x, (self.patch_size, self.patch_size))
        ht, wt = xp.shape[-2] // self.patch_size, xp.shape[-1] // self.patch_size
        y = self.unpatchify(self.head(self.forward_encoder(xp, lead, ids)), ht, wt)
        y = crop_2d(y, size)[:, : len(self.variables)]
        if not self.residual:
            return y
        # the increment is added to the state; a variable absent from the input counts as zero (its mean)
        base = x.new_zeros(b, len(self.variables), ny, nx)
        for j, i in enumerate(ids):
            if i < len(self.variables):
                base[:, i] = x[:, j]
        return base + y.to(base.dtype)

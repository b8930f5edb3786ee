"""Per-field kernels of the one-pass scorer: sufficient statistics of one forecast field per region.

A kernel takes one or more fields (the members of one ``(init_time, lead_time)`` forecast, flattened
over the grid to ``P`` points), the truth at the valid time, the area weights, optionally the
climatology, and a :class:`RegionIndex` built from the event masks at that valid time. It returns the
sums of :mod:`workbench.scoring.stats` for every region at once, shape ``(R, K)``: row 0 is ``all``,
row 1 ``extreme`` (the union of the event masks), rows ``2..`` the event types.

The error of each point is computed once. The ``all`` sums run over the whole field; the extreme and
event sums run over the (usually small) set of points inside any mask, gathered once and contracted
against the stacked event-membership matrix with one matrix product. ``non_extreme`` is ``all`` minus
``extreme``, so it costs nothing.

Three implementations give the same sums:

* ``numba``: a fused compiled loop that reads each value once (the default on CPUs; it runs at the speed
  of memory);
* ``numpy``: vectorised NumPy, the readable reference;
* ``torch``: the same vectorised code on torch tensors, batched over fields, on any device (GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.scoring.stats import StatLayout

try:  # numba ships with datashader, a dependency; the NumPy kernels stand in when it is missing
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False


@dataclass(frozen=True)
class RegionIndex:
    """The cells of one valid time that lie in any event mask.

    Attributes
    ----------
    idx : numpy.ndarray
        Flat grid positions (int64, ascending) of cells inside the union of the event masks.
    member : numpy.ndarray
        Bool ``(n_event_types, len(idx))``: which event types cover each of those cells.
    """

    idx: np.ndarray
    member: np.ndarray

    @classmethod
    def from_masks(cls, masks: np.ndarray) -> RegionIndex:
        """Build from bool masks ``(n_event_types, P)``."""
        masks = np.asarray(masks, dtype=bool)
        idx = np.flatnonzero(masks.any(axis=0))
        return cls(idx=idx, member=np.ascontiguousarray(masks[:, idx]))

    @property
    def n_events(self) -> int:
        return int(self.member.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.idx.nbytes + self.member.nbytes)


def n_region_rows(region_count: int | None) -> int:
    """Rows of a kernel's output: ``all`` only without masks, else all + extreme + each event type."""
    return 1 if region_count is None else 2 + region_count


# ---------------------------------------------------------------------------------------------------
# numba kernels

if HAVE_NUMBA:
    # Reassociation lets LLVM vectorise the sums; "nnan"/"ninf" are left out on purpose, since the
    # NaN test ``x == x`` must survive optimisation.
    _FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

    @numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_det_dense(f, o, w):  # pragma: no cover - compiled
        sw = 0.0
        swe = 0.0
        swae = 0.0
        swe2 = 0.0
        nv = 0.0
        for i in range(o.shape[0]):
            e = np.float64(f[i]) - np.float64(o[i])
            ok = e == e
            wi = np.float64(w[i]) if ok else 0.0
            e = e if ok else 0.0
            we = wi * e
            sw += wi
            swe += we
            swae += abs(we)
            swe2 += we * e
            nv += 1.0 if ok else 0.0
        out = np.empty(6)
        out[0] = sw
        out[1] = swe
        out[2] = swae
        out[3] = swe2
        out[4] = nv
        out[5] = o.shape[0] - nv
        return out

    @numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_det_acc_dense(f, o, w, c):  # pragma: no cover - compiled
        sw = 0.0
        swe = 0.0
        swae = 0.0
        swe2 = 0.0
        nv = 0.0
        sfa2 = 0.0
        soa2 = 0.0
        sfo = 0.0
        for i in range(o.shape[0]):
            fi = np.float64(f[i])
            oi = np.float64(o[i])
            ci = np.float64(c[i])
            e = fi - oi
            ok = e == e
            wi = np.float64(w[i]) if ok else 0.0
            e = e if ok else 0.0
            we = wi * e
            sw += wi
            swe += we
            swae += abs(we)
            swe2 += we * e
            nv += 1.0 if ok else 0.0
            fa = fi - ci
            oa = oi - ci
            okc = ok and ci == ci
            wa = wi if okc else 0.0
            fa = fa if okc else 0.0
            oa = oa if okc else 0.0
            sfa2 += wa * fa * fa
            soa2 += wa * oa * oa
            sfo += wa * fa * oa
        out = np.empty(9)
        out[0] = sw
        out[1] = swe
        out[2] = swae
        out[3] = swe2
        out[4] = nv
        out[5] = o.shape[0] - nv
        out[6] = sfa2
        out[7] = soa2
        out[8] = sfo
        return out

    @numba.njit(nogil=True, cache=True)
    def _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, i, q, buf):  # pragma: no cover
        """Weighted statistics of grid point ``i`` into ``q`` (members of ``f`` on axis 0, weight-major)."""
        m_all = n_weight * n_noise
        oi = np.float64(o[i])
        wi = np.float64(w[i])
        total = 0.0
        for m in range(m_all):
            v = np.float64(f[m, i])
            buf[m] = v
            total += v
        mean = total / m_all
        e = mean - oi
        q[:] = 0.0
        if e != e:
            q[5] = 1.0
            return
        q[0] = wi
        q[1] = wi * e
        q[2] = wi * abs(e)
        q[3] = wi * e * e
        q[4] = 1.0
        if kacc >= 0:
            ci = np.float64(c[i])
            if ci == ci:
                fa = mean - ci
                oa = oi - ci
                q[kacc] = wi * fa * fa
                q[kacc + 1] = wi * oa * oa
                q[kacc + 2] = wi * fa * oa
        if kens >= 0:
            var = 0.0
            skill = 0.0
            for m in range(m_all):
                d = buf[m] - mean
                var += d * d
                skill += abs(buf[m] - oi)
            var /= m_all
            skill /= m_all
            if ksplit >= 0:
                alea = 0.0
                epi = 0.0
                for a in range(n_weight):
                    inner = 0.0
                    for n in range(n_noise):
                        inner += buf[a * n_noise + n]
                    inner /= n_noise
                    v_in = 0.0
                    for n in range(n_noise):
                        d = buf[a * n_noise + n] - inner
                        v_in += d * d
                    alea += v_in / n_noise
                    epi += (inner - mean) * (inner - mean)
                q[ksplit] = wi * alea / n_weight
                q[ksplit + 1] = wi * epi / n_weight
            # insertion sort: ensembles are small, and buf is no longer needed in member order
            for a in range(1, m_all):
                key = buf[a]
                b = a - 1
                while b >= 0 and buf[b] > key:
                    buf[b + 1] = buf[b]
                    b -= 1
                buf[b + 1] = key
            pair = 0.0
            for k in range(m_all):
                pair += (2.0 * k - m_all + 1.0) * buf[k]
            q[kens] = wi * (skill - pair / (m_all * (m_all - 1.0)))
            q[kens + 1] = wi * var

    @numba.njit(nogil=True, cache=True)
    def _nb_generic_dense(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, k_cols):  # pragma: no cover
        acc = np.zeros(k_cols)
        q = np.empty(k_cols)
        buf = np.empty(n_weight * n_noise)
        for i in range(o.shape[0]):
            _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, i, q, buf)
            for k in range(k_cols):
                acc[k] += q[k]
        return acc

    @numba.njit(nogil=True, cache=True)
    def _nb_points(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, k_cols, idx):  # pragma: no cover
        out = np.empty((idx.shape[0], k_cols))
        buf = np.empty(n_weight * n_noise)
        for j in range(idx.shape[0]):
            _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, idx[j], out[j], buf)
        return out


def numba_field_stats(
    f: np.ndarray,
    o: np.ndarray,
    w: np.ndarray,
    c: np.ndarray | None,
    layout: StatLayout,
    region: RegionIndex | None,
) -> np.ndarray:
    """Statistics of one forecast field with the compiled kernels.

    Parameters
    ----------
    f : numpy.ndarray
        Members ``(M, P)``, weight-member major when there are two member dimensions.
    o : numpy.ndarray
        Truth ``(P,)``.
    w : numpy.ndarray
        Weights ``(P,)``.
    c : numpy.ndarray or None
        Climatology ``(P,)`` when ``layout.acc``.
    layout : StatLayout
        Which statistics to accumulate.
    region : RegionIndex or None
        The event cells at this valid time, or None to score ``all`` only.

    Returns
    -------
    numpy.ndarray
        ``(R, K)`` float64 sums.
    """
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("numba is not installed; use engine='numpy'.")
    k_cols = layout.n_columns
    kacc, kens, ksplit = layout.index("swfa2"), layout.index("swcrps"), layout.index("swalea")
    c_arr = c if c is not None else o[:1]
    out = np.zeros((n_region_rows(None if region is None else region.n_events), k_cols))
    if layout.n_members == 1 and not layout.acc:
        out[0] = _nb_det_dense(f[0], o, w)
    elif layout.n_members == 1:
        out[0] = _nb_det_acc_dense(f[0], o, w, c_arr)
    else:
        out[0] = _nb_generic_dense(
            f, o, w, c_arr, layout.n_weight, layout.n_noise, kacc, kens, ksplit, k_cols
        )
    if region is not None and region.idx.size:
        pts = _nb_points(
            f, o, w, c_arr, layout.n_weight, layout.n_noise, kacc, kens, ksplit, k_cols, region.idx
        )
        out[1] = pts.sum(axis=0)
        out[2:] = region.member.astype(np.float64) @ pts
    return out


# ---------------------------------------------------------------------------------------------------
# vectorised kernels (NumPy and torch share the code through a small namespace)


class _NumpyOps:
    name = "numpy"

    @staticmethod
    def where(cond, x, y):
        return np.where(cond, x, y)

    @staticmethod
    def stack(xs, axis):
        return np.stack(xs, axis=axis)

    @staticmethod
    def sort(x, axis):
        return np.sort(x, axis=axis)

    @staticmethod
    def sum64(x, axis):
        return np.sum(x, axis=axis, dtype=np.float64)

    @staticmethod
    def as_float(x, like):
        return x.astype(like.dtype)

    @staticmethod
    def to64(x):
        return x.astype(np.float64)

    @staticmethod
    def arange(n, like):
        return np.arange(n, dtype=like.dtype)

    @staticmethod
    def zeros64(shape, like):
        return np.zeros(shape, dtype=np.float64)

    @staticmethod
    def from_numpy(x, like):
        return np.asarray(x)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)


class _TorchOps:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def where(self, cond, x, y):
        return self.torch.where(cond, x, y)

    def stack(self, xs, axis):
        return self.torch.stack(xs, dim=axis)

    def sort(self, x, axis):
        return self.torch.sort(x, dim=axis).values

    def sum64(self, x, axis):
        return x.sum(dim=axis, dtype=self.torch.float64)

    def as_float(self, x, like):
        return x.to(like.dtype)

    def to64(self, x):
        return x.to(self.torch.float64)

    def arange(self, n, like):
        return self.torch.arange(n, dtype=like.dtype, device=like.device)

    def zeros64(self, shape, like):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=like.device)

    def from_numpy(self, x, like):
        return self.torch.as_tensor(np.asarray(x), device=like.device)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()


def vector_field_stats(
    f, o, w, c, layout: StatLayout, regions: list[RegionIndex | None] | None, xp
) -> np.ndarray:
    """Statistics of ``S`` forecast fields at once with array operations (NumPy or torch).

    Parameters
    ----------
    f : array
        Members ``(S, M, P)`` (NumPy array or torch tensor; weight-member major for two member dims).
    o : array
        Truth ``(S, P)``.
    w : array
        Weights ``(P,)``.
    c : array or None
        Climatology ``(S, P)`` when ``layout.acc``.
    layout : StatLayout
        Which statistics to accumulate.
    regions : list of RegionIndex or None
        One per field, or None to score ``all`` only.
    xp : _NumpyOps or _TorchOps
        The array namespace.

    Returns
    -------
    numpy.ndarray
        ``(S, R, K)`` float64 sums.
    """
    n_fields, m, n_points = f.shape
    mean = f.mean(1)
    e = mean - o
    ok = e == e
    zero = 0.0
    e0 = xp.where(ok, e, zero)
    wv = xp.where(ok, w, zero)
    okf = xp.as_float(ok, e)
    cols = [wv, wv * e0, wv * abs(e0), wv * e0 * e0, okf, 1.0 - okf]
    if layout.acc:
        fa = mean - c
        oa = o - c
        okc = ok & (oa == oa) & (fa == fa)
        wa = xp.where(okc, w, zero)
        fa = xp.where(okc, fa, zero)
        oa = xp.where(okc, oa, zero)
        cols += [wa * fa * fa, wa * oa * oa, wa * fa * oa]
    if layout.ensemble:
        dev = f - mean[:, None]
        var = (dev * dev).mean(1)
        skill = abs(f - o[:, None]).mean(1)
        coef = 2.0 * xp.arange(m, f) - m + 1.0
        pair = (xp.sort(f, 1) * coef[None, :, None]).sum(1)
        crps = skill - pair / (m * (m - 1.0))
        cols += [wv * xp.where(ok, crps, zero), wv * xp.where(ok, var, zero)]
        if layout.split:
            grouped = f.reshape(n_fields, layout.n_weight, layout.n_noise, n_points)
            inner = grouped.mean(2)
            d_in = grouped - inner[:, :, None]
            alea = (d_in * d_in).mean(2).mean(1)
            d_out = inner - mean[:, None]
            epi = (d_out * d_out).mean(1)
            cols += [wv * xp.where(ok, alea, zero), wv * xp.where(ok, epi, zero)]
    q = xp.stack(cols, 1)  # (S, K, P)
    n_events = None
    if regions is not None:
        n_events = next((r.n_events for r in regions if r is not None), 0)
    out = xp.zeros64((n_fields, n_region_rows(n_events), len(cols)), f)
    out[:, 0] = xp.sum64(q, -1)
    if regions is not None:
        for s, region in enumerate(regions):
            if region is None or not region.idx.size:
                continue
            sub = xp.to64(q[s][:, xp.from_numpy(region.idx, f)])  # (K, n): gathered once
            out[s, 1] = sub.sum(-1)
            out[s, 2:] = xp.to64(xp.from_numpy(region.member, f)) @ sub.T
    return xp.to_numpy(out)


NUMPY_OPS = _NumpyOps()


def torch_ops() -> _TorchOps:
    """The torch namespace for :func:`vector_field_stats`."""
    return _TorchOps()

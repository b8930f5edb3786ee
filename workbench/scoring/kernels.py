"""Kernels of the one-pass scorer: sufficient statistics of forecast fields, for every region at once.

A kernel takes forecast fields (members flattened over the grid to ``P`` points) valid at one time,
the truth at that time, the area weights, optionally the climatology, and the event masks at that time
(for the vectorised kernels as a :class:`RegionIndex`, the cells in any mask with their event bits). It returns the sums of :mod:`workbench.scoring.stats` for every
region, shape ``(R, K)`` per field: row 0 is ``all``, row 1 ``extreme`` (the union of the event
masks), rows ``2..`` the event types.

The ``all`` sums run over the whole field; the extreme and event sums run over the (usually few)
cells inside any mask: the compiled kernels add each such cell's statistics to the extreme row and to
the rows of the event types whose bit its code sets; the vectorised kernels gather those cells once and
contract them against the event-membership matrix with one matrix product.
``non_extreme`` is ``all`` minus ``extreme``, so it costs nothing.

Three implementations give the same sums:

* ``numba``: fused compiled loops that read each value once (the default on CPUs; they run at the
  speed of memory);
* ``numpy``: vectorised NumPy, the readable reference;
* ``torch``: the same vectorised code on torch tensors, batched over fields, on any device (GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import DataError
from workbench.scoring.stats import StatLayout

try:  # numba ships with datashader, a dependency; the NumPy kernels stand in when it is missing
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False


MAX_EVENT_TYPES = 63  # event membership is a bit code in an int64


@dataclass(frozen=True)
class RegionIndex:
    """The cells of one valid time that lie in any event mask.

    Attributes
    ----------
    idx : numpy.ndarray
        Flat grid positions (int64, ascending) of cells inside the union of the event masks.
    codes : numpy.ndarray
        int64 per cell of ``idx``: bit ``e`` is set when event type ``e`` covers the cell.
    n_events : int
        Number of event types.
    """

    idx: np.ndarray
    codes: np.ndarray
    n_events: int

    @classmethod
    def from_masks(cls, masks: np.ndarray) -> RegionIndex:
        """Build from bool masks ``(n_event_types, P)``."""
        masks = np.asarray(masks, dtype=bool)
        n_events = masks.shape[0]
        if n_events > MAX_EVENT_TYPES:
            raise DataError(f"At most {MAX_EVENT_TYPES} event types can be scored at once, got {n_events}.")
        idx = np.flatnonzero(np.logical_or.reduce(masks, axis=0))
        codes = np.zeros(idx.size, dtype=np.int64)
        for e in range(n_events):
            codes |= masks[e, idx].astype(np.int64) << e
        return cls(idx=idx, codes=codes, n_events=n_events)

    @property
    def member(self) -> np.ndarray:
        """Bool ``(n_events, len(idx))``: which event types cover each cell of ``idx``."""
        bits = np.arange(self.n_events, dtype=np.int64)[:, None]
        return ((self.codes[None, :] >> bits) & 1).astype(bool)

    @property
    def nbytes(self) -> int:
        return int(self.idx.nbytes + self.codes.nbytes)


def n_region_rows(region_count: int | None) -> int:
    """Rows of a kernel's output: ``all`` only without masks, else all + extreme + each event type."""
    return 1 if region_count is None else 2 + region_count


# ---------------------------------------------------------------------------------------------------
# numba kernels
#
# They work on a *group*: the forecast fields of one block that share a valid time (hence the same
# truth, climatology and event masks), given as a 4-D array ``F (n_init, n_lead, M, P)`` and the
# (init, lead) index of each field. The event masks of the group are first folded into one bit code per
# cell (bit ``e`` for event type ``e``, :func:`event_codes`) and cut into runs of consecutive cells with
# the same non-zero code (:func:`event_runs`; events are blobs, so runs are long and few). The grid is
# walked in tiles that fit the cache, every field of the group read tile by tile, and a vectorised loop
# adds all cells to the ``all`` sums; then a vectorised sum over each run is added to the extreme row and
# to the rows of the run's bits. Truth, weights and masks come from memory once per group.

_TILE = 2048

if HAVE_NUMBA:
    # Reassociation lets LLVM vectorise the sums; "nnan"/"ninf" are left out on purpose, since the
    # NaN test ``x == x`` must survive optimisation.
    _FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

    @numba.njit(nogil=True, cache=True, inline="always")
    def _nb_flush(acc, g, code, r):  # pragma: no cover - compiled
        """Add a run's sums ``r`` to the extreme row and to the row of each event bit of ``code``."""
        rows = (np.int64(code) << 1) | 1
        row = 1
        while rows != 0:
            if rows & 1:
                for k in range(r.shape[0]):
                    acc[g, row, k] += r[k]
            rows >>= 1
            row += 1

    @numba.njit(nogil=True, cache=True, fastmath=_FASTMATH, inline="always")
    def _nb_dense_tile(f, o, w, t0, t1, zero):  # pragma: no cover - compiled
        """Sums over cells ``t0 .. t1`` in the precision of ``zero``: float32 data are summed in float32
        within a tile (twice the SIMD width; a tile is short, so the rounding stays near float32's own
        resolution of the data) and the tiles in float64 by the caller."""
        sw = zero
        swe = zero
        swae = zero
        swe2 = zero
        nv = zero
        one = zero + 1
        for i in range(t0, t1):
            e = f[i] - o[i]
            ok = e == e
            # multiplying by the flag (not branching) keeps the loop vectorised
            okf = ok * one
            wi = w[i] * okf
            e = e if ok else zero
            we = wi * e
            sw += wi
            swe += we
            swae += abs(we)
            swe2 += we * e
            nv += okf
        return sw, swe, swae, swe2, nv

    @numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_det_group(
        F, ii, jj, o, w, c, has_c, starts, ends, codes, zero, out
    ):  # pragma: no cover - compiled
        """Deterministic fields: ``out (k, R, K)`` with K = 6 (9 with the climatology ``c``).

        ``starts, ends, codes``: the runs of consecutive event cells that share a code (see
        :func:`event_runs`); none without masks.
        """
        n_points = o.shape[0]
        k_fields = ii.shape[0]
        k_cols = out.shape[2]
        acc = np.zeros((k_fields, out.shape[1], 9))
        run = np.zeros(9)
        # all cells: tile by tile, every field of the group per tile, so o and w stay in cache
        for t0 in range(0, n_points, _TILE):
            t1 = min(n_points, t0 + _TILE)
            for g in range(k_fields):
                f = F[ii[g], jj[g], 0]
                sw = 0.0
                swe = 0.0
                swae = 0.0
                swe2 = 0.0
                nv = 0.0
                sfa2 = 0.0
                soa2 = 0.0
                sfo = 0.0
                if has_c:
                    for i in range(t0, t1):
                        fi = np.float64(f[i])
                        oi = np.float64(o[i])
                        ci = np.float64(c[i])
                        e = fi - oi
                        ok = e == e
                        # multiplying by the flag (not branching) keeps the loop vectorised
                        wi = np.float64(w[i]) * ok
                        e = e if ok else 0.0
                        we = wi * e
                        sw += wi
                        swe += we
                        swae += abs(we)
                        swe2 += we * e
                        nv += ok
                        okc = ok & (ci == ci)
                        wa = wi * okc
                        fa = fi - ci if okc else 0.0
                        oa = oi - ci if okc else 0.0
                        sfa2 += wa * fa * fa
                        soa2 += wa * oa * oa
                        sfo += wa * fa * oa
                else:
                    sums = _nb_dense_tile(f, o, w, t0, t1, zero)
                    sw = np.float64(sums[0])
                    swe = np.float64(sums[1])
                    swae = np.float64(sums[2])
                    swe2 = np.float64(sums[3])
                    nv = np.float64(sums[4])
                acc[g, 0, 0] += sw
                acc[g, 0, 1] += swe
                acc[g, 0, 2] += swae
                acc[g, 0, 3] += swe2
                acc[g, 0, 4] += nv
                acc[g, 0, 5] += (t1 - t0) - nv
                acc[g, 0, 6] += sfa2
                acc[g, 0, 7] += soa2
                acc[g, 0, 8] += sfo
        # event cells: a vectorised sum over each run, added to the extreme row and to its bits' rows
        for g in range(k_fields):
            f = F[ii[g], jj[g], 0]
            for r in range(starts.shape[0]):
                sw = 0.0
                swe = 0.0
                swae = 0.0
                swe2 = 0.0
                nv = 0.0
                sfa2 = 0.0
                soa2 = 0.0
                sfo = 0.0
                for i in range(starts[r], ends[r]):
                    fi = np.float64(f[i])
                    oi = np.float64(o[i])
                    e = fi - oi
                    ok = e == e
                    wi = np.float64(w[i]) * ok
                    e = e if ok else 0.0
                    we = wi * e
                    sw += wi
                    swe += we
                    swae += abs(we)
                    swe2 += we * e
                    nv += ok
                    if has_c:
                        ci = np.float64(c[i])
                        okc = ok & (ci == ci)
                        wa = wi * okc
                        fa = fi - ci if okc else 0.0
                        oa = oi - ci if okc else 0.0
                        sfa2 += wa * fa * fa
                        soa2 += wa * oa * oa
                        sfo += wa * fa * oa
                run[0] = sw
                run[1] = swe
                run[2] = swae
                run[3] = swe2
                run[4] = nv
                run[5] = (ends[r] - starts[r]) - nv
                run[6] = sfa2
                run[7] = soa2
                run[8] = sfo
                _nb_flush(acc, g, codes[r], run)
        for g in range(k_fields):
            for r in range(out.shape[1]):
                for k in range(k_cols):
                    out[g, r, k] += acc[g, r, k]

    # inlined: a call that passes arrays costs reference counting per grid point
    @numba.njit(nogil=True, cache=True, inline="always")
    def _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, linear, i, q, buf):  # pragma: no cover
        """Weighted statistics of grid point ``i`` into ``q`` (members of ``f`` on axis 0, weight-major).

        With ``linear`` (dBZ) the scored ensemble mean is taken in linear units, 10 log10 mean 10^(f/10);
        the spread terms keep the arithmetic mean (see :class:`StatLayout`)."""
        m_all = n_weight * n_noise
        oi = np.float64(o[i])
        wi = np.float64(w[i])
        total = 0.0
        power = 0.0
        for m in range(m_all):
            v = np.float64(f[m, i])
            buf[m] = v
            total += v
            if linear:
                power += 10.0 ** (v / 10.0)
        mean = total / m_all
        fbar = 10.0 * np.log10(power / m_all) if linear else mean
        e = fbar - oi
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
                fa = fbar - ci
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
    def _nb_generic_group(
        F, ii, jj, o, w, c, n_weight, n_noise, kacc, kens, ksplit, linear, starts, ends, codes, out
    ):  # pragma: no cover
        """Ensembles (any statistics): ``out (k, R, K)``, one point at a time."""
        n_points = o.shape[0]
        k_cols = out.shape[2]
        q = np.empty(k_cols)
        run = np.empty(k_cols)
        buf = np.empty(n_weight * n_noise)
        for g in range(ii.shape[0]):
            f = F[ii[g], jj[g]]
            for i in range(n_points):
                _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, linear, i, q, buf)
                for k in range(k_cols):
                    out[g, 0, k] += q[k]
            for r in range(starts.shape[0]):
                run[:] = 0.0
                for i in range(starts[r], ends[r]):
                    _nb_point(f, o, w, c, n_weight, n_noise, kacc, kens, ksplit, linear, i, q, buf)
                    for k in range(k_cols):
                        run[k] += q[k]
                _nb_flush(out, g, codes[r], run)


def event_runs(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of consecutive grid cells (flat order) covered by the same set of event types.

    Parameters
    ----------
    masks : numpy.ndarray
        Bool ``(n_event_types, P)``.

    Returns
    -------
    starts, ends, codes : numpy.ndarray
        int64 per run: first cell, one past the last cell, and the bit code (bit ``e`` for event type
        ``e``). Cells outside every event belong to no run. Events come in blobs, so there are few runs.
    """
    code = event_codes(masks)
    n = code.shape[0]
    change = np.flatnonzero(code[1:] != code[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [n]]).astype(np.int64)
    codes = code[starts].astype(np.int64)
    keep = codes != 0
    return starts[keep], ends[keep], codes[keep]


def event_codes(masks: np.ndarray) -> np.ndarray:
    """Per cell, the bits of the event types covering it: ``masks (E, P)`` bool to ``(P,)`` unsigned ints.

    Done with NumPy's vectorised multiply and add (the bits are disjoint, so adding is or-ing), in the
    narrowest integer type that holds ``E`` bits.
    """
    n_events = masks.shape[0]
    if n_events > MAX_EVENT_TYPES:
        raise DataError(f"At most {MAX_EVENT_TYPES} event types can be scored at once, got {n_events}.")
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= n_events)
    code = np.zeros(masks.shape[1], dtype=dtype)
    if HAVE_NUMBA and masks.dtype == bool and masks.ndim == 2 and masks.strides[1] == 1:
        # compiled: eight types per pass over the cells, or-ed in a register and stored once (a pass per
        # type, as NumPy makes, reads and writes the codes eight times); the types left over one by one.
        # Rows may lie apart (one valid time of (type, time, cell) masks): only the cells must be adjacent
        m = masks.view(np.uint8)
        full = n_events - n_events % 8
        for g in range(0, full, 8):
            _nb_codes8(m, g, code)
        for e in range(full, n_events):
            _nb_codes1(m, e, code)
        return code
    tmp = np.empty_like(code)
    for e in range(n_events):
        np.multiply(masks[e].view(np.uint8), dtype(1 << e), out=tmp)
        np.add(code, tmp, out=code)
    return code


if HAVE_NUMBA:

    @numba.njit(nogil=True, cache=True)
    def _nb_codes8(m, g, code):  # pragma: no cover - compiled
        """``code |= (m[g] | m[g+1] << 1 | ... | m[g+7] << 7) << g`` (mask rows of 0/1 bytes). One 2-D
        array, not eight rows: LLVM checks every pair of arrays for overlap before it vectorises, and
        gives up beyond a few."""
        if g == 0:  # the first eight types: a plain store, which LLVM keeps in byte lanes
            for j in range(code.shape[0]):
                c = m[0, j] | (m[1, j] << 1) | (m[2, j] << 2) | (m[3, j] << 3)
                code[j] = c | (m[4, j] << 4) | (m[5, j] << 5) | (m[6, j] << 6) | (m[7, j] << 7)
            return
        for j in range(code.shape[0]):
            c = m[g, j] | (m[g + 1, j] << 1) | (m[g + 2, j] << 2) | (m[g + 3, j] << 3)
            c |= (m[g + 4, j] << 4) | (m[g + 5, j] << 5) | (m[g + 6, j] << 6) | (m[g + 7, j] << 7)
            code[j] = code[j] | (c << g)

    @numba.njit(nogil=True, cache=True)
    def _nb_codes1(m, e, code):  # pragma: no cover - compiled
        """``code |= m[e] << e``."""
        row = m[e]
        for j in range(code.shape[0]):
            code[j] = code[j] | (row[j] << e)


def numba_group_stats(
    fields: np.ndarray,
    ii: np.ndarray,
    jj: np.ndarray,
    o: np.ndarray,
    w: np.ndarray,
    c: np.ndarray | None,
    layout: StatLayout,
    masks: np.ndarray | None = None,
    *,
    runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    n_events: int | None = None,
) -> np.ndarray:
    """Statistics of the forecast fields of one valid time with the compiled kernels.

    Parameters
    ----------
    fields : numpy.ndarray
        A block of forecasts ``(n_init, n_lead, M, P)`` (members weight-major for two member dims).
    ii, jj : numpy.ndarray
        int64 (init, lead) indices into ``fields`` of the fields to score, all valid at the same time.
    o : numpy.ndarray
        Truth ``(P,)`` at that time.
    w : numpy.ndarray
        Weights ``(P,)``.
    c : numpy.ndarray or None
        Climatology ``(P,)`` when ``layout.acc``.
    layout : StatLayout
        Which statistics to accumulate.
    masks : numpy.ndarray or None
        Bool event masks ``(n_event_types, P)`` at that time, or None to score ``all`` only.
    runs : tuple of numpy.ndarray, optional
        Instead of ``masks``, their :func:`event_runs` (computed once per valid time and reused).
    n_events : int, optional
        The number of event types, with ``runs``.

    Returns
    -------
    numpy.ndarray
        ``(len(ii), R, K)`` float64 sums.
    """
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("numba is not installed; use engine='numpy'.")
    k_cols = layout.n_columns
    if masks is not None:
        runs, n_events = event_runs(masks), masks.shape[0]
    out = np.zeros((len(ii), n_region_rows(None if runs is None else n_events), k_cols))
    if runs is not None:
        starts, ends, codes = runs
    else:
        starts = ends = codes = np.zeros(0, dtype=np.int64)
    c_arr = c if c is not None else o[:1]
    if layout.n_members == 1:
        zero = np.result_type(fields.dtype, o.dtype, w.dtype).type(0)
        _nb_det_group(fields, ii, jj, o, w, c_arr, layout.acc, starts, ends, codes, zero, out)
    else:
        kacc, kens, ksplit = layout.index("swfa2"), layout.index("swcrps"), layout.index("swalea")
        args = (layout.n_weight, layout.n_noise, kacc, kens, ksplit, bool(layout.linear_mean))
        _nb_generic_group(fields, ii, jj, o, w, c_arr, *args, starts, ends, codes, out)
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
    def swap_last(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def zeros64(shape, like):
        return np.zeros(shape, dtype=np.float64)

    @staticmethod
    def from_numpy(x, like):
        return np.asarray(x)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def log10(x):
        return np.log10(x)


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

    def swap_last(self, x):
        return x.transpose(-1, -2)

    def zeros64(self, shape, like):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=like.device)

    def from_numpy(self, x, like):
        return self.torch.as_tensor(np.asarray(x), device=like.device)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def log10(self, x):
        return self.torch.log10(x)


def vector_field_stats(
    f, o, w, c, layout: StatLayout, regions: list[RegionIndex | None] | None, xp, codes=None, n_events=None
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
        One per field, or None to score ``all`` only (or when ``codes`` is given).
    xp : _NumpyOps or _TorchOps
        The array namespace.
    codes : array, optional
        Instead of ``regions``, when all fields share a valid time: the event bits of each cell
        (:func:`event_codes`, shape ``(P,)``), contracted densely with matrix products, the fast way
        on a GPU.
    n_events : int, optional
        The number of event types, with ``codes``.

    Returns
    -------
    numpy.ndarray
        ``(S, R, K)`` float64 sums.
    """
    n_fields, m, n_points = f.shape
    mean = f.mean(1)
    # dBZ ensembles: the scored mean in linear units; the spread terms below keep the arithmetic mean
    fbar = 10.0 * xp.log10((10.0 ** (f / 10.0)).mean(1)) if layout.linear_mean and m > 1 else mean
    e = fbar - o
    ok = e == e
    zero = 0.0
    e0 = xp.where(ok, e, zero)
    wv = xp.where(ok, w, zero)
    okf = xp.as_float(ok, e)
    cols = [wv, wv * e0, wv * abs(e0), wv * e0 * e0, okf, 1.0 - okf]
    if layout.acc:
        fa = fbar - c
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
    if codes is None:
        n_events = None
    if regions is not None:
        n_events = next((r.n_events for r in regions if r is not None), 0)
    out = xp.zeros64((n_fields, n_region_rows(n_events), len(cols)), f)
    out[:, 0] = xp.sum64(q, -1)
    if codes is not None and n_events:
        q64 = xp.to64(q)  # (S, K, P)
        bits = codes[None, :] >> xp.arange(n_events, codes)[:, None]
        member = xp.to64(bits & 1)  # (E, P)
        extreme = xp.to64(codes != 0)  # (P,)
        out[:, 1] = q64 @ extreme
        out[:, 2:] = xp.swap_last(q64 @ member.T)  # (S, K, E) -> (S, E, K)
    if regions is not None:
        members: dict[int, object] = {}
        for s, region in enumerate(regions):
            if region is None or not region.idx.size:
                continue
            if id(region) not in members:
                members[id(region)] = (xp.from_numpy(region.idx, f), xp.to64(xp.from_numpy(region.member, f)))
            idx, member = members[id(region)]
            sub = xp.to64(q[s][:, idx])  # (K, n): gathered once
            out[s, 1] = sub.sum(-1)
            out[s, 2:] = member @ sub.T
    return xp.to_numpy(out)


NUMPY_OPS = _NumpyOps()


def torch_ops() -> _TorchOps:
    """The torch namespace for :func:`vector_field_stats`."""
    return _TorchOps()

"""Categorical and neighbourhood scores of every region in one pass, kept per initial time.

:func:`event_statistics` reads each forecast field once and, in the same loop over its cells, adds

- the weighted contingency table (hits, false alarms, misses, correct negatives) at every threshold for
  every region (``all``, ``extreme`` = any event, each event type; the masks follow the valid time), and
- the fractions-skill-score sums :math:`\\sum w (P_f-P_o)^2` and :math:`\\sum w (P_f^2+P_o^2)` at every
  window size over the whole domain, from window sums that cost O(N) per scale (separable running sums
  or summed-area tables; windows wholly inside the domain, weights at the window centre; NaN cells
  leave the fractions' denominators),

to arrays indexed by initial time. :func:`event_scores` turns the sums into POD, FAR, CSI, ETS,
frequency bias, SEDI (:mod:`workbench.scoring.categorical`) and FSS (:mod:`workbench.scoring.neighbourhood`),
equal to those functions on the same data, and with ``confidence`` adds bootstrap bounds by resampling
the per-init sums (:mod:`workbench.scoring.bootstrap`): one matrix product, no second pass; the
resampled tables are scored by one compiled loop and their quantiles taken by one sort.

The loop is compiled with numba when it is installed (fields of a block in parallel); otherwise the
NumPy fallback scores field by field. The compiled loop is built for speed on the 3-km grid
(``benchmarks/results/scoring.md``):

- a contingency table is three sums per threshold, :math:`F = \\sum w[f\\ge t]`,
  :math:`O = \\sum w[o\\ge t]`, :math:`H = \\sum w[\\min(f, o)\\ge t]`, plus :math:`\\sum w`
  (hits H, false alarms F - H, misses O - H, correct negatives the rest). With uniform weights (the
  default) they are exact counts times the weight, counted row by row in float32 lanes (a row has far
  fewer than 2^24 cells); other weights sum in float64, tile by tile;
- the truth in memory is read in place: every (init, lead) that verifies at one valid time reads the
  same truth row, with no copy of the truth per initial time;
- the fields that verify at one valid time are scored as a group (up to ``GROUP_MAX``), groups in
  parallel, in one pass over the grid rows: the truth's share (its counts ``O``, its window sums and
  their squares) is taken once per row for the group, and the fields' products read it from the cache
  while the row is hot;
- the event regions come from the runs of consecutive cells sharing an event code, built once per
  valid time on every core and sorted by code: a field's cells of one code are gathered and counted
  together, so the extreme and per-type rows cost a pass over the few per cent of cells inside
  events, not one pass per region nor a call per run;
- FSS with uniform weights and windows up to ``FSS16_MAX`` cells (a field without NaN): separable
  window sums in int16 lanes in the same pass over the rows as the counts, with no summed-area table:
  along the row from a few vectorised passes (27 = 9+9+9, 9 = 3+3+3; :func:`_row_sum_plan`), down the
  columns by a running sum over a ring of the last rows (row sums in int8, window sums in int16, rows
  padded to a cache line), and the squares and products summed by 16-bit multiply-adds into int32,
  exactly, one reduction per loop (LLVM vectorises two at a third of the speed). Larger windows take
  a summed-area table of ``[f >= t] + 65536 [o >= t]`` (uint32, exact modulo 2^32, up to
  ``PACKED_MAX`` cells), built row by row into a ring; a field with NaN, other weights, or still
  larger windows take the three tables of the general case.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from workbench.errors import DataError
from workbench.scoring import kernels
from workbench.scoring.categorical import TABLE, scores_from_table, table_scores
from workbench.scoring.inputs import _as_bool_masks
from workbench.scoring.neighbourhood import _grid_spacing_km, fss_from_sums, window_cells

__all__ = ["event_scores", "event_statistics"]

#: largest window (cells) of the compiled int16 FSS path: its row sums (at most n) are int8, its window
#: sums (n^2) int16, and their squares and products are summed in int32 over chunks of (2^31 - 1) / n^4
#: windows, at least 520 up to here (shorter chunks cost more than they save)
FSS16_MAX = 45
#: largest window (cells) of the packed summed-area table: a window's counts must fit 16 bits
PACKED_MAX = 255

#: most fields that share a pass over one valid time's truth (their int16 window rings stay in the cache)
GROUP_MAX = 4
#: bytes of a lazily loaded forecast read per block of initial times (at least one initial time)
BLOCK_BYTES = 512 * 2**20

if kernels.HAVE_NUMBA:
    import numba as nb

    # as in the kernels of decompose: reassociation lets LLVM vectorise the sums; no "nnan", since the
    # NaN test ``x == x`` must survive
    _FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
    _TILE = 8192  # cells: forecast + truth of a tile stay in the L1/L2 cache across the thresholds

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_valid(fs, os):  # pragma: no cover - compiled
        """Number of cells of the slices where forecast and truth are both valid (not NaN)."""
        n = 0
        for i in range(fs.size):
            n += np.int64(fs[i] == fs[i]) * np.int64(os[i] == os[i])
        return n

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_counts(fs, os, tv):  # pragma: no cover - compiled
        """``F, O, H`` of one threshold over the slices as exact int64 counts (uniform weights).

        One loop with three int64 reductions and no branch: the form LLVM vectorises (a loop over the
        thresholds around it, or an inlined call, keeps it scalar and 10x slower). A NaN compares
        False, and the other field's NaN test removes a valid value paired with a NaN."""
        a = 0
        b = 0
        c = 0
        for i in range(fs.size):
            fi = fs[i]
            oi = os[i]
            x = np.int64(fi >= tv) * np.int64(oi == oi)
            y = np.int64(oi >= tv) * np.int64(fi == fi)
            a += x
            b += y
            c += x * y
        return a, b, c

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_weighted(fs, os, ws, tv):  # pragma: no cover - compiled
        """Weighted ``F, O, H`` of one threshold over the slices, summed in float64."""
        a = 0.0
        b = 0.0
        c = 0.0
        for i in range(fs.size):
            fi = fs[i]
            oi = os[i]
            wi = np.float64(ws[i])
            x = np.float64(fi >= tv) * np.float64(oi == oi)
            y = np.float64(oi >= tv) * np.float64(fi == fi)
            a += x * wi
            b += y * wi
            c += (x * y) * wi
        return a, b, c

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_weight_sum(fs, os, ws):  # pragma: no cover - compiled
        """Sum of the weights of the valid cells of the slices, in float64."""
        a = 0.0
        for i in range(fs.size):
            a += np.float64(ws[i]) * (np.float64(fs[i] == fs[i]) * np.float64(os[i] == os[i]))
        return a

    @nb.njit(nogil=True, cache=True)
    def _nb_span(f, o, w, t0, t1, thr, w0, acc):  # pragma: no cover - compiled
        """Add the sums of cells ``t0 .. t1`` to ``acc``: ``[sum w, n valid, (F_t, O_t, H_t) per threshold]``
        with F = sum w [f >= t], O = sum w [o >= t], H = sum w [f >= t and o >= t] over valid cells.

        Tile by tile (in the cache for the second and later thresholds); ``w0 > 0`` says the weights
        are all ``w0``: the sums are then exact counts times ``w0``."""
        for s in range(t0, t1, _TILE):
            e = min(s + _TILE, t1)
            fs = f[s:e]
            os = o[s:e]
            nv = _nb_valid(fs, os)
            acc[1] += nv
            if w0 > 0:
                acc[0] += nv * w0
                for t in range(thr.shape[0]):
                    a, b, c = _nb_counts(fs, os, thr[t])
                    acc[2 + 3 * t] += a * w0
                    acc[3 + 3 * t] += b * w0
                    acc[4 + 3 * t] += c * w0
            else:
                ws = w[s:e]
                acc[0] += _nb_weight_sum(fs, os, ws)
                for t in range(thr.shape[0]):
                    a, b, c = _nb_weighted(fs, os, ws, thr[t])
                    acc[2 + 3 * t] += a
                    acc[3 + 3 * t] += b
                    acc[4 + 3 * t] += c

    @nb.njit(nogil=True, cache=True, inline="always")
    def _nb_flush(sums, g, code, run):  # pragma: no cover - compiled
        """Add a run's sums to the extreme row and to the row of each event bit of ``code``."""
        for k in range(run.shape[0]):
            sums[g, 1, k] += run[k]
        c = code
        b = 0
        while c:
            if c & 1:
                for k in range(run.shape[0]):
                    sums[g, 2 + b, k] += run[k]
            c >>= 1
            b += 1

    @nb.njit(nogil=True, cache=True, inline="always")
    def _nb_window_counts(top, bottom, n, j):  # pragma: no cover - compiled
        """Forecast and truth event counts of the window ending at column ``j + n`` of two rows of the
        packed table: its packed sum modulo 2^32, split into its low and high 16 bits (as float64)."""
        v = (
            np.int64(bottom[j + n]) - np.int64(top[j + n]) - np.int64(bottom[j]) + np.int64(top[j])
        ) & 0xFFFFFFFF
        return np.float64(v & 0xFFFF), np.float64(v >> 16)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_window_row(top, bottom, n, m):  # pragma: no cover - compiled
        """FSS sums ``sum (cf - co)^2`` and ``sum cf^2 + co^2`` of one row of ``m`` windows of ``n``
        cells, from two rows of the packed table (uniform weights).

        The window's packed sum is taken modulo 2^32 in int64; the counts (at most 65535) are squared
        in float64, which is exact (below 2^53) and vectorises, where 64-bit integer products do not."""
        num = 0.0
        den = 0.0
        for j in range(m):
            cf, co = _nb_window_counts(top, bottom, n, j)
            d = cf - co
            num += d * d
            den += cf * cf + co * co
        return num, den

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_window_row_weighted(top, bottom, n, m, wr):  # pragma: no cover - compiled
        """As :func:`_nb_window_row`, each window weighted by ``wr`` (the weights at the centres)."""
        num = 0.0
        den = 0.0
        for j in range(m):
            cf, co = _nb_window_counts(top, bottom, n, j)
            d = cf - co
            wc = np.float64(wr[j])
            num += wc * (d * d)
            den += wc * (cf * cf + co * co)
        return num, den

    @nb.njit(nogil=True, cache=True)
    def _nb_fss_packed(f, o, w, w0, fss_thr, windows, ny, nx, out):  # pragma: no cover - compiled
        """FSS sums of a field without NaN from one summed-area table of both event fields.

        Each cell holds ``[f >= thr] + 65536 [o >= thr]``; a window's sum of that is ``cf + 65536 co``
        (both at most 729 < 65536 for the largest windows used, at most 255 x 255 cells), so one table
        serves forecast and truth. The table is kept modulo 2^32 (uint32): a window's sum is a
        difference of four entries, exact modulo 2^32, and smaller than 2^32. With no NaN every window
        has n^2 valid cells, so (P_f - P_o)^2 = (cf - co)^2 / n^4.

        The table is built row by row into a ring of the last ``max(windows) + 1`` rows, and each
        window size sums its row of windows as soon as the row below it is built: the table never
        leaves the cache (a whole one is 7.6 MB on the 3-km grid), and all scales come from one sweep.
        With uniform weights (``w0 > 0``) a row's sums are exact integers in float64 and the totals
        are kept in int64, so the result does not depend on the summation order."""
        n_win = windows.shape[0]
        depth = windows.max() + 1
        ring = np.zeros((depth, nx + 1), np.uint32)
        row = np.empty(nx, np.int64)
        inum = np.zeros(n_win, np.int64)
        iden = np.zeros(n_win, np.int64)
        fnum = np.zeros(n_win)
        fden = np.zeros(n_win)
        for i in range(ny):
            p = i * nx
            for j in range(nx):  # vectorised: the packed events of the row
                row[j] = np.int64(f[p + j] >= fss_thr) + (np.int64(o[p + j] >= fss_thr) << 16)
            run = np.int64(0)
            for j in range(nx):  # the running sum along the row (sequential)
                run += row[j]
                row[j] = run
            r = i + 1  # the table's row r sums the field's rows 0 .. i
            prev = ring[(r - 1) % depth]
            cur = ring[r % depth]
            cur[0] = 0
            for j in range(nx):  # vectorised: add the table's row above, modulo 2^32
                cur[j + 1] = np.uint32((np.int64(prev[j + 1]) + row[j]) & 0xFFFFFFFF)
            for s in range(n_win):
                n = windows[s]
                if r < n:
                    continue
                top = ring[(r - n) % depth]
                m = nx - n + 1
                if w0 > 0:
                    a, b = _nb_window_row(top, cur, n, m)
                    inum[s] += np.int64(a)
                    iden[s] += np.int64(b)
                else:
                    q = (r - n + n // 2) * nx + n // 2  # the weight at each window's centre
                    a, b = _nb_window_row_weighted(top, cur, n, m, w[q : q + m])
                    fnum[s] += a
                    fden[s] += b
        for s in range(n_win):
            n4 = np.float64(windows[s]) ** 4
            if w0 > 0:
                out[s, 0] = np.float64(inum[s]) * w0 / n4
                out[s, 1] = np.float64(iden[s]) * w0 / n4
            else:
                out[s, 0] = fnum[s] / n4
                out[s, 1] = fden[s] / n4

    @nb.njit(nogil=True, cache=True)
    def _nb_fss_general(f, o, w, fss_thr, windows, ny, nx, out):  # pragma: no cover - compiled
        """FSS sums of a field with NaN cells: three summed-area tables (forecast events, truth events,
        valid cells), the fractions over each window's valid cells."""
        sf = np.zeros((ny + 1, nx + 1), np.int32)
        so = np.zeros((ny + 1, nx + 1), np.int32)
        sv = np.zeros((ny + 1, nx + 1), np.int32)
        for i in range(ny):
            rf = 0
            ro = 0
            rv = 0
            for j in range(nx):
                fv = f[i * nx + j]
                ov = o[i * nx + j]
                if not (np.isnan(fv) or np.isnan(ov)):
                    rv += 1
                    if fv >= fss_thr:
                        rf += 1
                    if ov >= fss_thr:
                        ro += 1
                sf[i + 1, j + 1] = sf[i, j + 1] + rf
                so[i + 1, j + 1] = so[i, j + 1] + ro
                sv[i + 1, j + 1] = sv[i, j + 1] + rv
        for s in range(windows.shape[0]):
            n = windows[s]
            h = n // 2
            num = 0.0
            den = 0.0
            for i in range(ny - n + 1):
                for j in range(nx - n + 1):
                    cf = sf[i + n, j + n] - sf[i, j + n] - sf[i + n, j] + sf[i, j]
                    co = so[i + n, j + n] - so[i, j + n] - so[i + n, j] + so[i, j]
                    if cf == 0 and co == 0:
                        continue  # no event in the window: adds nothing
                    nv = sv[i + n, j + n] - sv[i, j + n] - sv[i + n, j] + sv[i, j]
                    pf = cf / nv
                    po = co / nv
                    wc = w[(i + h) * nx + j + h]
                    num += wc * (pf - po) * (pf - po)
                    den += wc * (pf * pf + po * po)
            out[s, 0] = num
            out[s, 1] = den

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_truth_f32(os, tv):  # pragma: no cover - compiled
        """``O`` of one threshold and the number of NaN cells of a truth slice of fewer than 2^24
        cells, counted in float32 lanes (16 to a vector, twice int32's count): exact, as every count
        stays below 2^24."""
        b = np.float32(0.0)
        nan = np.float32(0.0)
        for i in range(os.size):
            oi = os[i]
            b += np.float32(oi >= tv)
            nan += np.float32(oi != oi)
        return np.int64(b), np.int64(nan)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_fh_f32(fs, os, tv):  # pragma: no cover - compiled
        """``F`` and ``H`` of one threshold over slices of fewer than 2^24 cells, in float32 lanes.
        ``H`` uses ``min(f, o) >= t``, true where both are (on cells without NaN)."""
        a = np.float32(0.0)
        c = np.float32(0.0)
        for i in range(fs.size):
            fi = fs[i]
            a += np.float32(fi >= tv)
            c += np.float32(min(fi, os[i]) >= tv)
        return np.int64(a), np.int64(c)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_fhn_f32(fs, os, tv):  # pragma: no cover - compiled
        """:func:`_nb_fh_f32` and the number of the forecast's NaN cells. A loop of its own, not a flag:
        a branch in the loop stops LLVM vectorising it, and the NaN count is needed once per row, not
        in every threshold's pass."""
        a = np.float32(0.0)
        c = np.float32(0.0)
        nan = np.float32(0.0)
        for i in range(fs.size):
            fi = fs[i]
            a += np.float32(fi >= tv)
            c += np.float32(min(fi, os[i]) >= tv)
            nan += np.float32(fi != fi)
        return np.int64(a), np.int64(c), np.int64(nan)

    @nb.njit(nogil=True, cache=True)
    def _nb_truth_row(orow, thr, out):  # pragma: no cover - compiled
        """``O`` per threshold of a truth row into ``out``; returns its number of NaN cells (the
        counts hold for a row without NaN). In pieces below 2^24 cells (a grid row is one piece)."""
        out[:] = 0
        nan = np.int64(0)
        piece = 1 << 23
        for s in range(0, orow.size, piece):
            e = min(s + piece, orow.size)
            for t in range(thr.shape[0]):
                b, q = _nb_truth_f32(orow[s:e], thr[t])
                out[t] += b
                if t == 0:
                    nan += q
        return nan

    @nb.njit(nogil=True, cache=True)
    def _nb_field_row(fr, orow, thr, out):  # pragma: no cover - compiled
        """``F, H`` per threshold of a forecast row against a truth row without NaN into
        ``out[2t], out[2t + 1]``; returns the forecast row's number of NaN cells (the counts hold
        where it is 0). The first threshold's pass counts the NaN, the others only ``F, H``."""
        out[:] = 0
        nan = np.int64(0)
        piece = 1 << 23
        for s in range(0, fr.size, piece):
            e = min(s + piece, fr.size)
            a, c, q = _nb_fhn_f32(fr[s:e], orow[s:e], thr[0])
            out[0] += a
            out[1] += c
            nan += q
            for t in range(1, thr.shape[0]):
                a, c = _nb_fh_f32(fr[s:e], orow[s:e], thr[t])
                out[2 * t] += a
                out[2 * t + 1] += c
        return nan

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_copy2(fs, os, fb, ob):  # pragma: no cover - compiled
        """Copy a run's forecast and truth cells to the group buffers."""
        for i in range(fs.size):
            fb[i] = fs[i]
            ob[i] = os[i]

    @nb.njit(nogil=True, cache=True)
    def _nb_group_counts(fl, ol, starts, ends, codes, n_run, thr, w0, sums, g):  # pragma: no cover - compiled
        """The event regions' sums of one field (uniform weights), from its runs sorted by event code.

        The cells of all runs with one code are gathered into a buffer and counted with the vectorised
        loops at once: a field has thousands of short runs but a dozen codes, so the counting sees long
        stretches and the region rows are updated once per code, not once per run."""
        total = 0
        for r in range(n_run):
            total += ends[r] - starts[r]
        fb = np.empty(total, fl.dtype)
        ob = np.empty(total, ol.dtype)
        run = np.zeros(sums.shape[2])
        r = 0
        while r < n_run:
            code = codes[r]
            p = 0
            while r < n_run and codes[r] == code:
                s0 = starts[r]
                e0 = ends[r]
                _nb_copy2(fl[s0:e0], ol[s0:e0], fb[p : p + e0 - s0], ob[p : p + e0 - s0])
                p += e0 - s0
                r += 1
            fs = fb[:p]
            os = ob[:p]
            nv = _nb_valid(fs, os)
            run[0] = nv * w0
            run[1] = nv
            for t in range(thr.shape[0]):
                a, b, c = _nb_counts(fs, os, thr[t])
                run[2 + 3 * t] = a * w0
                run[3 + 3 * t] = b * w0
                run[4 + 3 * t] = c * w0
            _nb_flush(sums, g, code, run)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_event16(fr, thr, a):  # pragma: no cover - compiled
        """One row of an event field as int8: ``a = [f >= t]``."""
        for j in range(fr.shape[0]):
            a[j] = np.int8(fr[j] >= thr)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_pairs16(x0, x1, out, m):  # pragma: no cover - compiled
        """``out = x0 + x1`` over ``m`` cells (a doubling step of the row sums). One output and few
        arrays per loop: LLVM checks at run time that the arrays do not overlap, and gives up
        vectorising beyond a handful of such checks."""
        for j in range(m):
            out[j] = np.int8(x0[j] + x1[j])

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_parts16(p0, p1, p2, p3, out, m):  # pragma: no cover - compiled
        """A row of window sums along the row, ``out = p0 + p1 + p2 + p3`` (parts of the doubling table)."""
        for j in range(m):
            out[j] = np.int8(np.int8(p0[j] + p1[j]) + np.int8(p2[j] + p3[j]))

    @nb.njit(nogil=True, cache=True)
    def _nb_nodes16(na, plan, nx):  # pragma: no cover - compiled
        """The row sums of every node of ``plan`` (:func:`_row_sum_plan`) from the event row ``na[0]``:
        each node adds up to four shifted earlier nodes, one vectorised pass. ``na[len(plan)]`` is a
        row kept zero, the parts a node does not use."""
        zero = na[plan.shape[0]]
        for q in range(1, plan.shape[0]):
            m = nx - plan[q, 0, 2] + 1
            c = 0
            while c < 4 and plan[q, c, 0] >= 0:
                c += 1
            n0, o0, n1, o1 = plan[q, 0, 0], plan[q, 0, 1], plan[q, 1, 0], plan[q, 1, 1]
            if c == 2:
                _nb_pairs16(na[n0][o0:], na[n1][o1:], na[q], m)
            else:
                n2, o2 = plan[q, 2, 0], plan[q, 2, 1]
                p3 = zero
                if c == 4:
                    p3 = na[plan[q, 3, 0]][plan[q, 3, 1] :]
                _nb_parts16(na[n0][o0:], na[n1][o1:], na[n2][o2:], p3, na[q], m)

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_vstep16(h, v, r, m):  # pragma: no cover - compiled
        """One row of windows from its row sums ``h``: the vertical running sums ``v += h - r`` (``r``:
        the ring row of ``h`` leaving the window, replaced by ``h``): row sums in int8, window sums
        in int16."""
        for j in range(m):
            v[j] = np.int16(v[j] + np.int16(np.int16(h[j]) - np.int16(r[j])))
            r[j] = h[j]

    @nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
    def _nb_dot16(a, b, m):  # pragma: no cover - compiled
        """``sum a * b`` of int16 rows, summed in int32 (the caller bounds ``m`` so it cannot overflow).
        One reduction per loop: LLVM then vectorises it with multiply-adds of 16-bit pairs, where two
        reductions in one loop run at a third of the speed."""
        s = 0
        for j in range(m):
            s += np.int32(a[j]) * np.int32(b[j])
        return np.int32(s)

    @nb.njit(nogil=True, cache=True)
    def _nb_windows16(fr, i, thr, plan, widths, wnode, rbase, na, ring, v, vo, acc):  # pragma: no cover
        """Add row ``i`` of a field without NaN to its window sums of the small sizes ``widths``.

        Separable window sums in int16, exact: the row's event field ``[x >= t]`` is summed along the
        row by the nodes of ``plan`` (:func:`_row_sum_plan`), then down the columns by a running sum
        ``v`` over the last ``n`` rows (their row sums in the ring rows ``ring[rbase[k]:]``). No prefix
        sums: every step is a vectorised pass over the row (a row's prefix sum is a chain of dependent
        adds), and 16-bit lanes hold twice the cells of 32-bit ones.

        For the truth (``vo`` empty) ``acc[k, 0]`` gets ``sum v^2`` of the windows whose last row is
        ``i``; for a forecast also ``acc[k, 1] = sum v * vo`` with the truth's windows ``vo`` of the
        same row, from which the FSS sums follow: ``sum (cf - co)^2 = sum cf^2 - 2 sum cf co + sum co^2``."""
        nx = fr.shape[0]
        _nb_event16(fr, thr, na[0])
        _nb_nodes16(na, plan, nx)
        truth = vo.shape[0] == 0
        for k in range(widths.shape[0]):
            n = widths[k]
            m = nx - n + 1
            h = na[wnode[k]]
            slot = rbase[k] + i % n
            # per window v^2 <= n^4 and v vo <= n^4: chunks of c windows sum below 2^31 in int32
            c = (2**31 - 1) // n**4
            s2 = np.int64(0)
            p2 = np.int64(0)
            vk = v[k]
            _nb_vstep16(h, vk, ring[slot], m)
            for s0 in range(0, m, c):
                e0 = min(s0 + c, m)
                s2 += np.int64(_nb_dot16(vk[s0:e0], vk[s0:e0], e0 - s0))
                if not truth:
                    p2 += np.int64(_nb_dot16(vk[s0:e0], vo[k][s0:e0], e0 - s0))
            if i >= n - 1:
                acc[k, 0] += s2
                acc[k, 1] += p2

    @nb.njit(nogil=True, cache=True)
    def _nb_fss_by_path(fl, ol, w, w0, fss_thr, windows, pick, ny, nx, general, out):  # pragma: no cover
        """FSS sums of the window sizes ``windows[pick]`` into their rows of ``out``: the three-table
        general kernel if ``general`` (NaN cells, or windows above ``PACKED_MAX``), else the packed one."""
        sub = windows[pick]
        if sub.shape[0] == 0:
            return
        tmp = np.zeros((sub.shape[0], 2))
        if general:
            _nb_fss_general(fl, ol, w, fss_thr, sub, ny, nx, tmp)
        else:
            _nb_fss_packed(fl, ol, w, w0, fss_thr, sub, ny, nx, tmp)
        q = 0
        for k in range(windows.shape[0]):
            if pick[k]:
                out[k, 0] = tmp[q, 0]
                out[k, 1] = tmp[q, 1]
                q += 1

    @nb.njit(nogil=True, cache=True)
    def _nb_group_dense(
        f, ol, members, thr, fss_thr, plan, widths, wnode, ny, nx, counts, tot, clean
    ):  # pragma: no cover
        """One pass over the rows of the fields ``f[members]``, all verifying against the truth ``ol``
        (uniform weights): the exact counts ``[n valid, (F, O, H) per threshold]`` of the whole domain
        into ``counts[g]`` and, while a field meets no NaN (``clean[g]``), its int16 window sums of
        the small sizes ``widths`` into ``tot[g]`` (``sum cf^2``, ``sum cf co``). Returns the truth's
        ``sum co^2`` per size.

        The truth's share is done once per row for the whole group: its counts ``O`` and its window
        sums, which the fields' products read from the cache while the row is hot."""
        g_n = members.shape[0]
        n_thr = thr.shape[0]
        n_small = widths.shape[0]
        rbase = np.zeros(n_small + 1, np.int64)
        for k in range(n_small):
            rbase[k + 1] = rbase[k] + widths[k]
        # rows padded to 64 cells: every row then starts on a cache line, which the vectorised
        # passes over many rows at once (row sums, ring, window sums) gain about 5% of the pass from it
        nxp = (nx + 63) // 64 * 64
        na = np.zeros((plan.shape[0] + 1, nxp), np.int8)
        ring_o = np.zeros((rbase[n_small], nxp), np.int8)
        vo = np.zeros((n_small, nxp), np.int16)
        ring_f = np.zeros((g_n, rbase[n_small], nxp), np.int8)
        vf = np.zeros((g_n, n_small, nxp), np.int16)
        none = np.zeros((0, nxp), np.int16)
        soo = np.zeros((n_small, 2), np.int64)
        ocnt = np.zeros(n_thr, np.int64)
        fh = np.zeros(2 * n_thr, np.int64)
        clean[:] = True
        n_clean = g_n
        for i in range(ny):
            orow = ol[i * nx : (i + 1) * nx]
            truth_ok = _nb_truth_row(orow, thr, ocnt) == 0
            if n_small and n_clean and truth_ok:
                _nb_windows16(orow, i, fss_thr, plan, widths, wnode, rbase, na, ring_o, vo, none, soo)
            for g in range(g_n):
                fr = f[members[g]][i * nx : (i + 1) * nx]
                nv = nx
                if truth_ok and _nb_field_row(fr, orow, thr, fh) == 0:
                    for t in range(n_thr):
                        counts[g, 1 + 3 * t] += fh[2 * t]
                        counts[g, 2 + 3 * t] += ocnt[t]
                        counts[g, 3 + 3 * t] += fh[2 * t + 1]
                else:  # NaN in the row: counted again with the validity test
                    nv = _nb_valid(fr, orow)
                    for t in range(n_thr):
                        a, b, c = _nb_counts(fr, orow, thr[t])
                        counts[g, 1 + 3 * t] += a
                        counts[g, 2 + 3 * t] += b
                        counts[g, 3 + 3 * t] += c
                counts[g, 0] += nv
                if clean[g] and nv != nx:
                    clean[g] = False
                    n_clean -= 1
                if clean[g] and n_small:
                    _nb_windows16(
                        fr, i, fss_thr, plan, widths, wnode, rbase, na, ring_f[g], vf[g], vo, tot[g]
                    )
        return soo[:, 0]

    @nb.njit(parallel=True, cache=True)
    def _nb_groups(
        f,
        o_all,
        tix,
        gstart,
        gfield,
        w,
        w0,
        starts,
        ends,
        codes,
        n_runs,
        thr,
        fss_thr,
        windows,
        plan,
        wnode,
        ny,
        nx,
        sums,
        fss,
    ):  # pragma: no cover
        """Per field ``l``: the threshold sums of every region into ``sums[l]`` (rows all, extreme, each
        event type) and the FSS sums into ``fss[l]``. The fields come in groups that verify at one
        valid time (``gfield[gstart[g]:gstart[g + 1]]``), groups in parallel; the truth of field ``l``
        is ``o_all[tix[l]]``, read in place (no copy of the truth per initial time).

        Uniform weights (``w0 > 0``, the default) take one pass over the rows of a group
        (:func:`_nb_group_dense`) that counts the ``all`` row exactly and sums the FSS of the window
        sizes up to ``FSS16_MAX`` cells in int16; other weights sum tile by tile in float64, field by
        field. The event regions come from the runs of cells that share an event code
        (``starts/ends/codes``, the first ``n_runs[l]`` of row ``l``): events are blobs covering a few
        per cent of the grid, so this is a small extra pass, not one per region. Fields with NaN, and
        larger windows, take the summed-area-table kernels."""
        n_points = f.shape[1]
        k_cols = sums.shape[2]
        n_thr = thr.shape[0]
        n_win = windows.shape[0]
        small = (windows <= FSS16_MAX) & (w0 > 0)
        widths = windows[small]
        for gi in nb.prange(gstart.shape[0] - 1):
            members = gfield[gstart[gi] : gstart[gi + 1]]
            g_n = members.shape[0]
            ol = o_all[tix[members[0]]]
            clean = np.zeros(g_n, np.bool_)
            tot = np.zeros((g_n, widths.shape[0], 2), np.int64)
            soo = np.zeros(widths.shape[0], np.int64)
            if w0 > 0:
                counts = np.zeros((g_n, 1 + 3 * n_thr), np.int64)
                soo = _nb_group_dense(
                    f, ol, members, thr, fss_thr, plan, widths, wnode, ny, nx, counts, tot, clean
                )
                for g in range(g_n):
                    l = members[g]  # noqa: E741
                    sums[l, 0, 0] = counts[g, 0] * w0
                    sums[l, 0, 1] = counts[g, 0]
                    for k in range(3 * n_thr):
                        sums[l, 0, 2 + k] = counts[g, 1 + k] * w0
            else:
                for g in range(g_n):
                    acc = np.zeros(k_cols)
                    _nb_span(f[members[g]], ol, w, 0, n_points, thr, w0, acc)
                    clean[g] = acc[1] == n_points
                    for k in range(k_cols):
                        sums[members[g], 0, k] = acc[k]
            for g in range(g_n):
                l = members[g]  # noqa: E741
                fl = f[l]
                if w0 > 0:
                    _nb_group_counts(fl, ol, starts[l], ends[l], codes[l], n_runs[l], thr, w0, sums, l)
                else:
                    run = np.zeros(k_cols)
                    for r in range(n_runs[l]):
                        run[:] = 0.0
                        _nb_span(fl, ol, w, starts[l, r], ends[l, r], thr, w0, run)
                        _nb_flush(sums, l, codes[l, r], run)
                if n_win == 0:
                    continue
                if clean[g]:
                    q = 0
                    for k in range(n_win):
                        if small[k]:
                            # sum (cf - co)^2 = sum cf^2 - 2 sum cf co + sum co^2; sum cf^2 + co^2
                            sff, sfo = tot[g, q, 0], tot[g, q, 1]
                            n4 = np.float64(windows[k]) ** 4
                            fss[l, k, 0] = np.float64(sff - 2 * sfo + soo[q]) * w0 / n4
                            fss[l, k, 1] = np.float64(sff + soo[q]) * w0 / n4
                            q += 1
                    packed = ~small & (windows <= PACKED_MAX)
                    _nb_fss_by_path(fl, ol, w, w0, fss_thr, windows, packed, ny, nx, False, fss[l])
                    _nb_fss_by_path(
                        fl, ol, w, w0, fss_thr, windows, windows > PACKED_MAX, ny, nx, True, fss[l]
                    )
                else:
                    _nb_fss_by_path(fl, ol, w, w0, fss_thr, windows, windows > 0, ny, nx, True, fss[l])


def _row_sum_plan(widths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """How the compiled FSS sums a row over windows of each width: nodes of row sums, each the sum of
    up to four earlier nodes shifted along the row (node 0 is the row itself, width 1).

    A width is built from the widest node it is a multiple of in at most four parts (3 = 1+1+1,
    9 = 3+3+3, 27 = 9+9+9: one pass each), else from the power-of-two nodes of its bits (built by
    doubling). Every node is one vectorised pass over the row, so fewer nodes is less work.

    Returns
    -------
    plan : numpy.ndarray
        int64 ``(n_nodes, 4, 3)``: per node and part, the source node, its shift, and the node's width
        (``-1`` for unused parts).
    wnode : numpy.ndarray
        int64: the node of each width.
    """
    width = [1]
    parts: list[list[tuple[int, int]]] = [[]]
    index = {1: 0}

    def add(n: int, plist: list[tuple[int, int]]) -> int:
        if n not in index:
            width.append(n)
            parts.append(plist)
            index[n] = len(width) - 1
        return index[n]

    def node(n: int) -> int:
        if n in index:
            return index[n]
        for m in sorted(index, reverse=True):
            if m < n and n % m == 0 and n // m <= 4:
                return add(n, [(index[m], t * m) for t in range(n // m)])
        if n & (n - 1) == 0:  # a power of two: twice its half (doubling)
            return add(n, [(node(n // 2), 0), (node(n // 2), n // 2)])
        plist, off = [], 0
        for b in range(n.bit_length() - 1, -1, -1):
            if n >> b & 1:
                plist.append((node(1 << b), off))
                off += 1 << b
        while len(plist) > 4:  # e.g. 31 = 16+8+4+2+1: the first two parts become a node of their own
            (x, _), (y, oy) = plist[0], plist[1]
            plist = [(add(oy + width[y], [(x, 0), (y, oy)]), 0), *plist[2:]]
        return add(n, plist)

    wnode = np.array([node(int(n)) for n in widths], dtype=np.int64)
    plan = np.full((len(width), 4, 3), -1, dtype=np.int64)
    for q, plist in enumerate(parts):
        plan[q, :, 2] = width[q]
        for c, (src, off) in enumerate(plist):
            plan[q, c, :2] = src, off
    return plan, wnode


def _valid_time_groups(tix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fields of a block grouped by the truth row they verify against (their valid time), in
    groups of at most ``GROUP_MAX``: offsets ``gstart`` into the field indices ``gfield``."""
    order = np.argsort(tix, kind="stable")
    cuts = np.flatnonzero(np.diff(tix[order])) + 1
    edges = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, order.size], strict=True):
        edges.extend(range(int(a), int(b), GROUP_MAX))
    return np.array([*edges, order.size], dtype=np.int64), order.astype(np.int64)


def _tables_from_sums(sums: np.ndarray, n_thr: int) -> np.ndarray:
    """``(..., 2 + 3T)`` sums ``[sum w, n, (F, O, H) per threshold]`` to ``(..., T, 4)`` tables (hits,
    false alarms, misses, correct negatives): hits = H, false alarms = F - H, misses = O - H, correct
    negatives = sum w - F - O + H."""
    sw = sums[..., 0:1]
    fo = sums[..., 2:].reshape(*sums.shape[:-1], n_thr, 3)
    fe, oe, hit = fo[..., 0], fo[..., 1], fo[..., 2]
    return np.stack([hit, fe - hit, oe - hit, sw - fe - oe + hit], axis=-1)


def _runs_by_code(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`kernels.event_runs` sorted by event code (then position): the compiled loop counts the
    cells of one code together."""
    starts, ends, codes = kernels.event_runs(masks)
    order = np.lexsort((starts, codes))
    return starts[order], ends[order], codes[order]


def _stack_runs(runs: list, n_fields: int):
    """The event runs of each field (:func:`kernels.event_runs`) as padded ``(n_fields, max_runs)``
    arrays and the number of runs per field (none without masks)."""
    width = max([len(r[0]) for r in runs] + [1])
    starts = np.zeros((n_fields, width), np.int64)
    ends = np.zeros((n_fields, width), np.int64)
    codes = np.zeros((n_fields, width), np.int64)
    n_runs = np.zeros(n_fields, np.int64)
    for j, (st, en, co) in enumerate(runs):
        starts[j, : len(st)], ends[j, : len(st)], codes[j, : len(st)] = st, en, co
        n_runs[j] = len(st)
    return starts, ends, codes, n_runs


def _fields_numpy(f, o, w, codes, thr, fss_thr, windows, ny, nx, table, fss, n_events):
    """The same sums with NumPy, field by field (no numba)."""
    from workbench.scoring.neighbourhood import _sat, _window_sums

    bits = np.arange(n_events)
    for l in range(f.shape[0]):  # noqa: E741
        valid = ~(np.isnan(f[l]) | np.isnan(o[l]))
        member = (codes[l][None, :].astype(np.int64) >> bits[:, None]) & 1 if n_events else None
        rows = [np.ones(f.shape[1], bool)]
        if n_events:
            rows += [codes[l] != 0, *(member[e].astype(bool) for e in range(n_events))]
        for t, value in enumerate(thr):
            fe, oe = (f[l] >= value) & valid, (o[l] >= value) & valid
            fn, on = ~fe & valid, ~oe & valid
            cells = (fe & oe, fe & on, fn & oe, fn & on)
            for r, region in enumerate(rows):
                for k, cell in enumerate(cells):
                    table[l, r, t, k] += float(np.sum(w[cell & region], dtype=np.float64))
        if not len(windows):
            continue
        fe = ((f[l] >= fss_thr) & valid).reshape(ny, nx)
        oe = ((o[l] >= fss_thr) & valid).reshape(ny, nx)
        sf, so, sv = _sat(fe), _sat(oe), _sat(valid.reshape(ny, nx))
        w2 = w.reshape(ny, nx)
        for s, n in enumerate(windows):
            nv = _window_sums(sv, n, "valid")
            ok = nv > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                pf = np.where(ok, _window_sums(sf, n, "valid") / nv, 0.0)
                po = np.where(ok, _window_sums(so, n, "valid") / nv, 0.0)
            h = n // 2
            wc = w2[h : h + nv.shape[0], h : h + nv.shape[1]] * ok
            fss[l, s, 0] = float(np.sum(wc * (pf - po) ** 2))
            fss[l, s, 1] = float(np.sum(wc * (pf**2 + po**2)))


def event_statistics(
    forecast: xr.DataArray,
    truth: xr.DataArray,
    thresholds: Sequence[float],
    masks: xr.DataArray | None = None,
    *,
    fss_threshold: float | None = None,
    windows_km: Sequence[float] = (),
    weights: xr.DataArray | None = None,
    spatial_dims: tuple[str, str] = ("y", "x"),
    grid_spacing_km: float | None = None,
    engine: str = "auto",
) -> xr.Dataset:
    """Per-init contingency tables of every region and FSS sums, in one pass over the forecast.

    Parameters
    ----------
    forecast : xarray.DataArray
        Dims ``(init_time, lead_time, *spatial_dims)`` with coordinate ``valid_time``.
    truth : xarray.DataArray
        Dims ``(time, *spatial_dims)`` covering the valid times.
    thresholds : sequence of float
        Event thresholds (``>=``) of the contingency tables; sorted (and made unique) in the output.
    masks : xarray.DataArray, optional
        Bool ``(event_type, time, *spatial_dims)``: adds the ``extreme`` and per-type regions.
    fss_threshold : float, optional
        Threshold of the FSS (default: the middle of ``thresholds``).
    windows_km : sequence of float
        FSS window widths (none: no FSS).
    weights : xarray.DataArray, optional
        Area weights over the spatial dims (default 1).
    grid_spacing_km : float, optional
        For the windows; by default from the projected coordinates.
    engine : {"auto", "numba", "numpy"}
        Compiled loop or NumPy.

    Returns
    -------
    xarray.Dataset
        ``table`` ``(init_time, lead_time, region, threshold, cell)`` weighted counts and, with windows,
        ``fss_sums`` ``(init_time, lead_time, window_km, term)`` with terms ``num``, ``den``.
    """
    if engine not in ("auto", "numba", "numpy"):
        raise DataError(f"engine must be 'auto', 'numba' or 'numpy', not {engine!r}.")
    if engine == "numba" and not kernels.HAVE_NUMBA:
        raise DataError("engine='numba' needs the numba package.")
    use_numba = kernels.HAVE_NUMBA and engine != "numpy"
    for dim in ("init_time", "lead_time", *spatial_dims):
        if dim not in forecast.dims:
            raise DataError(f"The forecast lacks the dim {dim!r} (dims {list(forecast.dims)}).")
    extra = [d for d in forecast.dims if d not in ("init_time", "lead_time", *spatial_dims)]
    if extra:
        raise DataError(f"event_statistics scores deterministic fields; reduce the dims {extra} first.")
    thr = np.unique(np.asarray(thresholds, dtype=np.float64).reshape(-1))  # sorted, as the bins need
    if thr.size == 0 or not np.isfinite(thr).all():
        raise DataError("thresholds must be a non-empty sequence of finite numbers.")
    ny, nx = forecast.sizes[spatial_dims[0]], forecast.sizes[spatial_dims[1]]
    windows = np.zeros(0, dtype=np.int64)
    widths = [float(x) for x in windows_km]
    if widths:
        dx = grid_spacing_km if grid_spacing_km is not None else _grid_spacing_km(truth, spatial_dims)
        windows = np.array([window_cells(x, dx) for x in widths], dtype=np.int64)
        if (windows > min(ny, nx)).any():
            raise DataError(f"A window of {int(windows.max())} cells does not fit the {ny} x {nx} grid.")
    fss_thr = float(np.median(thr) if fss_threshold is None else fss_threshold)
    n_points = ny * nx
    w = np.ones(n_points) if weights is None else np.asarray(weights.transpose(*spatial_dims).values, float)
    w = np.ascontiguousarray(w.reshape(-1), dtype=np.float64)
    if w.size != n_points or (w < 0).any() or np.isnan(w).any():
        raise DataError("weights must be finite, non-negative and on the forecast's grid.")
    fc = forecast.transpose("init_time", "lead_time", *spatial_dims)
    tr = truth.transpose("time", *spatial_dims)
    vt = fc["valid_time"].values if "valid_time" in fc.coords else (fc["init_time"] + fc["lead_time"]).values
    tpos = tr.indexes["time"].get_indexer(np.asarray(vt).reshape(-1)).reshape(np.shape(vt))
    if (tpos < 0).any():
        raise DataError(f"The truth lacks {int((tpos < 0).sum())} forecast valid time(s).")
    n_events = 0
    mpos = None
    if masks is not None:
        mk = _as_bool_masks(masks).transpose("event_type", "time", *spatial_dims)
        n_events = mk.sizes["event_type"]
        mpos = mk.indexes["time"].get_indexer(np.asarray(vt).reshape(-1)).reshape(np.shape(vt))
        if (mpos < 0).any():
            raise DataError(f"The masks do not cover {int((mpos < 0).sum())} forecast valid time(s).")
        mask_values = mk.values
    n_init, n_lead = fc.sizes["init_time"], fc.sizes["lead_time"]
    n_rows = 1 if masks is None else 2 + n_events
    table = np.zeros((n_init, n_lead, n_rows, thr.size, 4))
    fss = np.zeros((n_init, n_lead, max(len(windows), 1), 2))
    dtype = np.result_type(fc.dtype, tr.dtype)
    dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
    # the truth in memory is read in place by the compiled loop (field l of init i is row tpos[i, l]);
    # only a lazy truth is loaded per initial time
    truth_values = None
    if isinstance(tr.variable._data, np.ndarray):
        truth_values = np.ascontiguousarray(tr.values.reshape(tr.sizes["time"], n_points), dtype=dtype)
    # the weights in the data's precision (as the data are compared and summed); uniform weights let
    # the compiled loop count in exact integers
    wd = w.astype(dtype)
    w0 = float(wd[0]) if wd[0] > 0 and (wd == wd[0]).all() else 0.0
    # per valid time, what its masks give the kernels: the event bits of each cell (NumPy) or the runs
    # of cells sharing an event code (compiled); shared by the fields of every init valid then, so built
    # once per valid time (114 for 384 fields in the 3-km benchmark) and kept while needed
    per_time: dict[int, object] = {}
    if use_numba:
        # the row sums of the windows of the int16 FSS path (uniform weights, at most FSS16_MAX cells)
        plan, wnode = _row_sum_plan([int(n) for n in windows if n <= FSS16_MAX])

    def build(m: np.ndarray):
        m = m.reshape(n_events, n_points)  # a view: one valid time of (type, time, cell) masks
        return _runs_by_code(m) if use_numba else kernels.event_codes(m)

    # blocks of initial times: every one for a forecast in memory (views, no copy), else about
    # BLOCK_BYTES loaded at a time; the compiled loop groups a block's fields by valid time
    per_block = 1
    if use_numba:
        lazy = not isinstance(fc.variable._data, np.ndarray)
        per_block = max(1, BLOCK_BYTES // (n_lead * n_points * dtype.itemsize)) if lazy else n_init
    with ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 8)), thread_name_prefix="event-runs") as pool:
        for i0 in range(0, n_init, per_block):
            i1 = min(i0 + per_block, n_init)
            n_fields = (i1 - i0) * n_lead
            f = np.ascontiguousarray(fc.isel(init_time=slice(i0, i1)).values, dtype=dtype)
            f = f.reshape(n_fields, n_points)
            tp = tpos[i0:i1].reshape(-1)
            if truth_values is not None:
                o_all, tix = truth_values, np.ascontiguousarray(tp, dtype=np.int64)
            else:
                needed, tix = np.unique(tp, return_inverse=True)
                o_all = np.ascontiguousarray(tr.isel(time=needed).values, dtype=dtype)
                o_all, tix = o_all.reshape(needed.size, n_points), tix.astype(np.int64).reshape(-1)
            if masks is not None:
                mp = mpos[i0:i1].reshape(-1)
                new = sorted({int(k) for k in mp} - set(per_time))
                # the valid times new to this block, on every core (compiled and NumPy parts release the GIL)
                per_time.update(zip(new, pool.map(build, [mask_values[:, k] for k in new]), strict=True))
                for k in [k for k in per_time if k < int(mp.min())]:
                    del per_time[k]  # inits are in time order: earlier valid times are not needed again
            if use_numba:
                runs = [per_time[int(k)] for k in mp] if masks is not None else []
                starts, ends, run_codes, n_runs = _stack_runs(runs, n_fields)
                gstart, gfield = _valid_time_groups(tix)
                sums = np.zeros((n_fields, n_rows, 2 + 3 * thr.size))
                block_fss = np.zeros((n_fields, *fss.shape[2:]))
                _nb_groups(
                    f, o_all, tix, gstart, gfield, wd, w0, starts, ends, run_codes, n_runs, thr.astype(dtype),
                    dtype.type(fss_thr), windows, plan, wnode, ny, nx, sums, block_fss,
                )  # fmt: skip
                table[i0:i1] = _tables_from_sums(sums, thr.size).reshape(i1 - i0, n_lead, *table.shape[2:])
                fss[i0:i1] = block_fss.reshape(i1 - i0, n_lead, *fss.shape[2:])
            else:
                if masks is None:
                    codes = np.zeros((n_lead, n_points), dtype=np.uint8)
                else:
                    codes = np.stack([per_time[int(mpos[i0, j])] for j in range(n_lead)])
                o = o_all[tix]
                args = (
                    f,
                    o,
                    w,
                    codes,
                    thr.astype(dtype),
                    dtype.type(fss_thr),
                    windows,
                    ny,
                    nx,
                    table[i0],
                    fss[i0],
                )
                _fields_numpy(*args, n_events=n_events)
    regions = ["all"]
    if masks is not None:
        # non_extreme = all minus extreme, as in decompose (the counts are sums)
        table = np.concatenate([table[:, :, :2], table[:, :, :1] - table[:, :, 1:2], table[:, :, 2:]], axis=2)
        regions = ["all", "extreme", "non_extreme", *(str(e) for e in masks["event_type"].values)]
    coords = {
        "init_time": fc["init_time"].values,
        "lead_time": fc["lead_time"].values,
        "region": regions,
        "threshold": thr,
        "cell": list(TABLE),
    }
    out = xr.Dataset(
        {"table": (("init_time", "lead_time", "region", "threshold", "cell"), table)}, coords=coords
    )
    if widths:
        out["fss_sums"] = (("init_time", "lead_time", "window_km", "term"), fss)
        out = out.assign_coords(window_km=widths, window_cells=("window_km", windows), term=["num", "den"])
        out.attrs["fss_threshold"] = fss_thr
    return out


def _scores(table: xr.DataArray, fss_sums: xr.DataArray | None) -> xr.Dataset:
    cells = {k: table.sel(cell=k, drop=True) for k in TABLE}
    out = scores_from_table(xr.Dataset(cells))
    if fss_sums is not None:
        out["fss"] = fss_from_sums(fss_sums.sel(term="num", drop=True), fss_sums.sel(term="den", drop=True))
    return out


def event_scores(
    stats: xr.Dataset,
    *,
    confidence: float | None = None,
    n_resamples: int = 1000,
    block_length: int | str | None = "auto",
    seed: int = 0,
) -> xr.Dataset:
    """POD, FAR, POFD, CSI, ETS, frequency bias, SEDI per lead, region and threshold, and FSS per lead
    and window, from :func:`event_statistics` (tables pooled over initial times); with ``confidence``
    also ``<score>_low`` / ``<score>_high`` from a block bootstrap over the initial times."""
    table = stats["table"]
    fss_sums = stats.get("fss_sums")
    out = _scores(table.sum("init_time"), None if fss_sums is None else fss_sums.sum("init_time"))
    out["n_events_observed"] = (table.sel(cell="hits") + table.sel(cell="misses")).sum("init_time")
    if confidence is None:
        return out
    from workbench.scoring.bootstrap import (
        auto_block_length,
        block_counts,
        default_block_length,
        interval_levels,
        nan_quantiles,
    )

    n_init = stats.sizes["init_time"]
    if block_length == "auto":
        # the memory of the per-init event frequency sets the block length
        obs = (table.sel(cell="hits") + table.sel(cell="misses")).sel(region="all")
        block_length = auto_block_length(obs.transpose("init_time", ...).values)
    elif block_length is None:
        block_length = default_block_length(n_init)
    counts = block_counts(n_init, n_resamples, block_length, seed).astype(np.float64)

    def resampled(da: xr.DataArray, along: str) -> dict[str, np.ndarray]:
        # the per-init sums of each resample: one matrix product; plain NumPy from here on (the scores
        # of a thousand resampled tables without xarray's alignment at every operation)
        da = da.transpose("init_time", ..., along)
        values = (counts @ da.values.reshape(n_init, -1)).reshape(n_resamples, *da.shape[1:])
        return {str(k): values[..., j] for j, k in enumerate(da[along].values)}

    cells = resampled(table, "cell")
    terms = None if fss_sums is None else resampled(fss_sums, "term")
    levels = interval_levels(n_init, int(block_length), confidence)

    # the scores of the resamples and their quantiles: compiled scores of the tables, one sort of the
    # resamples (threads over slices of lead times gained nothing once these two were fast)
    boot = table_scores(*(cells[k] for k in TABLE))
    if terms is not None:
        boot["fss"] = fss_from_sums(terms["num"], terms["den"])
    bounds = {}
    for name, values in boot.items():
        # quantiles have the levels first, then the estimate's dims (the table's less init and cell)
        low, high = nan_quantiles(values, levels, axis=0)
        bounds[f"{name}_low"] = xr.Variable(out[name].dims, low)
        bounds[f"{name}_high"] = xr.Variable(out[name].dims, high)
    out = out.assign(bounds)
    out.attrs.update({"confidence": confidence, "n_resamples": n_resamples, "bootstrap_seed": seed})
    return out


#: Thresholds of the dashboard's categorical scores: moderate events that the 24-km sample has in every
#: week (tp in m per hour, refc in dBZ, gust in m s-1); the events' own rules (25.4 mm/h, 50 dBZ,
#: 25.7 m s-1) are too rare on it for a stable CSI.
DASHBOARD_THRESHOLDS: dict[str, float] = {"tp": 0.0005, "refc": 35.0, "gust": 20.0}
DASHBOARD_WINDOW_KM = 72.0


def event_metrics(
    forecasts: dict[str, xr.Dataset],
    truth: xr.Dataset,
    masks: xr.DataArray | None = None,
    thresholds: dict[str, float] | None = None,
    window_km: float = DASHBOARD_WINDOW_KM,
    weights: xr.DataArray | None = None,
) -> xr.Dataset:
    """POD, FAR, CSI, ETS, SEDI (one threshold per variable) and FSS (one window) of several models, laid
    out as the scores of :func:`workbench.scoring.decompose`: dims ``(variable, lead_time, region,
    model)``, to merge with them (FSS is a domain score: region ``all`` only, NaN elsewhere).

    Deterministic forecasts only; variables without a threshold or missing from a forecast are skipped.
    """
    thresholds = DASHBOARD_THRESHOLDS if thresholds is None else thresholds
    per_model = []
    names = []
    for name, fc in forecasts.items():
        per_var = []
        variables = []
        for v, thr in thresholds.items():
            if v not in fc or v not in truth:
                continue
            da = fc[v]
            extra = [d for d in da.dims if d not in ("init_time", "lead_time", "y", "x")]
            if extra:
                continue
            stats = event_statistics(da, truth[v], [thr], masks, windows_km=[window_km], weights=weights)
            s = event_scores(stats).isel(threshold=0, drop=True)
            ds = s[["pod", "far", "csi", "ets", "sedi"]]
            fss = s["fss"].sel(window_km=window_km, drop=True).drop_vars("window_cells", errors="ignore")
            ds["fss"] = fss.expand_dims(region=["all"]).reindex(region=ds["region"].values)
            for k in ds.data_vars:
                ds[k].attrs["threshold"] = f"{v} >= {thr:g}"
            per_var.append(ds.drop_vars(["window_km", "window_cells"], errors="ignore"))
            variables.append(v)
        if per_var:
            per_model.append(
                xr.concat(per_var, dim=xr.DataArray(variables, dims="variable", name="variable"))
            )
            names.append(str(name))
    if not per_model:
        return xr.Dataset()
    out = xr.concat(per_model, dim=xr.DataArray(names, dims="model", name="model"), join="outer")
    return out.transpose("variable", "lead_time", "region", "model")

"""Control cases: for every extreme case, an ordinary case of the same shape, time and neighbourhood.

"The error inside extreme cases is N times the domain mean" mixes two things: the weather being extreme
and the case being a small box at a particular place and hour (boxes near storms, coasts or mountains,
afternoon hours). Following ExtremeWeatherBench's marginal cases, each case gets a control: a box of the
same size over the **same hours** (so the same season and time of day), at the **nearest position**
(centre to centre, in cells) where it touches no extreme mask of any type at any of those hours, within
``max_shift`` cells. Comparing the error inside the cases with the error inside their controls isolates
what the extreme weather adds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from workbench.errors import DataError
from workbench.events.grid import box_extents, grid_info
from workbench.events.table import check_table, make_table


def _free_positions(occupied: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bool (ny - h + 1, nx - w + 1): True where an h x w box with that top-left corner is clear."""
    sat = np.pad(occupied.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    total = sat[h:, w:] - sat[:-h, w:] - sat[h:, :-w] + sat[:-h, :-w]
    return total == 0


def control_cases(table: pd.DataFrame, masks: xr.DataArray, *, max_shift: int | None = None) -> pd.DataFrame:
    """A matched non-extreme control case for every case of ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
        Event table (:data:`~workbench.events.table.EVENT_COLUMNS`) on the masks' grid.
    masks : xarray.DataArray
        Bool extreme masks ``(event_type, time, <grid>)``; a control touches none of them over its hours.
        The case's hours outside the masks' times are treated as unknown, so only hours the masks cover
        are checked.
    max_shift : int, optional
        Largest distance in cells (centre to centre) from the case; default: anywhere on the grid.

    Returns
    -------
    pandas.DataFrame
        One control per matched case: same ``start``, ``end`` and box size; ``event_id`` ``ctl-<case id>``,
        ``event_type`` ``"control"``, ``source`` ``"control"``, ``details`` naming the case, its type and
        the shift ``(dy, dx)``. Cases without a clear position are left out, with a warning.

    Raises
    ------
    DataError
        Masks without ``time``/``event_type``, or boxes outside the masks' grid.
    """
    table = check_table(table)
    if not isinstance(masks, xr.DataArray) or not {"event_type", "time"} <= set(masks.dims):
        raise DataError("masks must be a bool DataArray (event_type, time, <grid>)")
    if max_shift is not None and max_shift < 0:
        raise DataError(f"max_shift must be >= 0, got {max_shift}")
    info = grid_info(masks)
    ny, nx = info.shape
    if ((table.y_max >= ny) | (table.x_max >= nx)).any():
        raise DataError(f"some case boxes reach outside the masks' {ny} x {nx} grid")
    union = masks.any("event_type").transpose("time", info.y_dim, info.x_dim)
    times = pd.DatetimeIndex(union["time"].values)
    rows, unmatched = [], []
    for case in table.itertuples(index=False):
        sel = (times >= case.start) & (times <= case.end)
        occupied = np.asarray(union.isel(time=np.flatnonzero(sel)).any("time").values) if sel.any() else None
        if occupied is None:
            occupied = np.zeros((ny, nx), dtype=bool)
        # the case's own cells count as occupied even where its type has no mask layer (report cases)
        occupied = occupied.copy()
        occupied[case.y_min : case.y_max + 1, case.x_min : case.x_max + 1] = True
        h, w = case.y_max - case.y_min + 1, case.x_max - case.x_min + 1
        if h > ny or w > nx:
            unmatched.append(case.event_id)
            continue
        free = _free_positions(occupied, h, w)
        yy, xx = np.nonzero(free)
        if not yy.size:
            unmatched.append(case.event_id)
            continue
        dist = np.hypot(yy - case.y_min, xx - case.x_min)
        if max_shift is not None and dist.min() > max_shift:
            unmatched.append(case.event_id)
            continue
        k = int(np.argmin(dist))  # nearest; ties go to the first in row-major order
        y0, x0 = int(yy[k]), int(xx[k])
        rows.append(
            {
                "event_id": f"ctl-{case.event_id}",
                "event_type": "control",
                "start": case.start,
                "end": case.end,
                "y_min": y0,
                "y_max": y0 + h - 1,
                "x_min": x0,
                "x_max": x0 + w - 1,
                "source": "control",
                "details": f"control for {case.event_id} ({case.event_type}); shift "
                f"({y0 - case.y_min}, {x0 - case.x_min}) cells",
            }
        )
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} of {len(table)} cases have no clear position for a control (e.g. "
            f"{unmatched[0]}); they are left out",
            UserWarning,
            stacklevel=2,
        )
    out = pd.DataFrame(rows)
    if not len(out):
        return make_table([])
    extent = box_extents(info, out.y_min, out.y_max, out.x_min, out.x_max)
    out["lat_min"], out["lat_max"], out["lon_min"], out["lon_max"] = extent.T
    return make_table(out)

"""The interior-only region: score a limited-area domain without the cells near its edge.

A limited-area model knows nothing of the weather outside its domain unless it is given lateral
boundary conditions, and its errors then grow inwards from the edges with lead time. The interior
region leaves out every cell closer than ``edge_km`` to the domain edge, so that a score measures
the model, not its blindness at the boundary. On the projected grids the workbench scores (HRRR's
Lambert conformal grid, coordinates ``x`` and ``y`` in metres) the distance to the edge is a
coordinate difference, so the interior is a rectangle and is taken by cropping every input: exact,
and cheaper than a mask (the cropped cells are never read).

The default width, :data:`DEFAULT_EDGE_KM` = 200 km, is the distance that air (and with it what
the model does not know at the domain edge) travels inwards in 6 hours at a typical 10 m/s of the
lower-tropospheric flow (216 km, rounded): the interior is then free of boundary effects for the
short leads that matter most, and more than three quarters of the sample's domain remains. Pass a
larger width for long leads.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import xarray as xr

from workbench.errors import DataError

__all__ = ["DEFAULT_EDGE_KM", "check_edge_km", "crop", "interior_slices"]

#: Default width of the edge band left out by the interior-only region, in km (module notes).
DEFAULT_EDGE_KM = 200.0

_LATLON = ("latitude", "longitude", "lat", "lon")


def check_edge_km(edge_km: object) -> float:
    """``edge_km`` as a float, or a :class:`DataError` saying what is wrong with it."""
    if isinstance(edge_km, bool) or not isinstance(edge_km, int | float | np.integer | np.floating):
        raise DataError(f"edge_km must be a number of kilometres, not {edge_km!r}.")
    value = float(edge_km)
    if not math.isfinite(value) or value < 0:
        raise DataError(f"edge_km must be a finite distance of at least 0 km, not {edge_km!r}.")
    return value


def interior_slices(truth: xr.Dataset, spatial: Sequence[Hashable], edge_km: float) -> dict[Hashable, slice]:
    """Index slices of the grid dims that keep the cells at least ``edge_km`` from the domain edge.

    Parameters
    ----------
    truth : xarray.Dataset
        The truth, whose grid coordinates (``x``/``y`` in metres) define the domain.
    spatial : sequence of str
        Its grid dimensions.
    edge_km : float
        Width of the band to leave out, in km.

    Returns
    -------
    dict
        ``{dim: slice}`` per grid dim.

    Raises
    ------
    DataError
        The grid is not projected in metres (a latitude-longitude grid has no straight edge distance),
        its coordinates are not evenly ordered, or nothing is left inside the band.
    """
    edge_km = check_edge_km(edge_km)
    out: dict[Hashable, slice] = {}
    for dim in spatial:
        if str(dim) in _LATLON or dim not in truth.coords:
            raise DataError(
                f"The interior region needs a projected grid with x/y coordinates in metres; the truth's "
                f"grid dimension {dim!r} is {'latitude-longitude' if str(dim) in _LATLON else 'without coordinates'}."
            )
        coord = np.asarray(truth[dim].values, dtype=np.float64)
        units = str(truth[dim].attrs.get("units", "m"))
        scale = {"m": 1.0, "metre": 1.0, "meter": 1.0, "km": 1000.0}.get(units)
        if scale is None:
            raise DataError(
                f"The grid coordinate {dim!r} is in {units!r}; the interior region needs m or km."
            )
        steps = np.diff(coord)
        if coord.size > 1 and not (np.all(steps > 0) or np.all(steps < 0)):
            raise DataError(f"The grid coordinate {dim!r} is not monotonic; cannot find the domain edge.")
        dist = np.minimum(np.abs(coord - coord[0]), np.abs(coord[-1] - coord)) * scale / 1000.0
        keep = np.flatnonzero(dist >= edge_km - 1e-9)
        if not keep.size:
            extent = abs(coord[-1] - coord[0]) * scale / 1000.0
            raise DataError(
                f"edge_km={edge_km:g} leaves no interior: the domain is {extent:.0f} km along {dim!r}."
            )
        out[dim] = slice(int(keep[0]), int(keep[-1]) + 1)
    return out


def crop(obj, slices: Mapping[Hashable, slice]):
    """``obj`` (Dataset, DataArray, a mapping of them, or None) cut to ``slices`` on the dims it has."""
    if obj is None:
        return None
    if isinstance(obj, xr.Dataset | xr.DataArray):
        return obj.isel({d: s for d, s in slices.items() if d in obj.dims})
    if isinstance(obj, Mapping):
        return {name: crop(value, slices) for name, value in obj.items()}
    return obj

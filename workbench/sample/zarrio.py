"""Streaming writes of the sample's zarr stores.

Coordinates are written by xarray (so that times and time deltas carry xarray's own CF encoding and
decode back exactly); data variables are then created with the zarr API and filled slab by slab as
the generator produces them, so no store is ever held whole in memory. Stores are zarr format 2 with
Blosc-LZ4 compression and consolidated metadata, readable by any xarray/zarr.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from numcodecs import Blosc

from workbench.lexicon import VARIABLES

_COMPRESSOR = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)


class StoreWriter:
    """Create a zarr store from coordinates, then fill its variables slab by slab.

    Parameters
    ----------
    path : Path
        Store directory (must not exist).
    coords : xarray.Dataset
        A dataset holding only the coordinates (and global attributes).
    dims : tuple of str
        Dimensions of every data variable.
    variables : sequence of str
        Canonical names of the data variables; units and long names come from the lexicon.
    chunks : tuple of int
        Chunk shape of the data variables.
    extra_attrs : dict, optional
        Per-variable attributes added to the lexicon's.
    """

    def __init__(
        self,
        path: Path,
        coords: xr.Dataset,
        dims: tuple[str, ...],
        variables: list[str] | tuple[str, ...],
        chunks: tuple[int, ...],
        extra_attrs: dict[str, dict] | None = None,
    ) -> None:
        self.path = Path(path)
        coords.to_zarr(self.path, mode="w", zarr_format=2, consolidated=False)
        shape = tuple(coords.sizes[d] for d in dims)
        self.root = zarr.open_group(self.path, mode="a", zarr_format=2)
        self.arrays: dict[str, zarr.Array] = {}
        for name in variables:
            info = VARIABLES[name]
            attrs = {"_ARRAY_DIMENSIONS": list(dims), "units": info.units, "long_name": info.long_name}
            if info.level is not None:
                attrs["level_hPa"] = info.level
            attrs.update((extra_attrs or {}).get(name, {}))
            self.arrays[name] = self.root.create_array(
                name,
                shape=shape,
                chunks=chunks,
                dtype="float32",
                compressors=_COMPRESSOR,
                fill_value=float("nan"),
                attributes=attrs,
            )

    def write(self, index: tuple, fields: dict[str, np.ndarray]) -> None:
        """Write one slab, ``fields[name]`` into ``array[index]`` for every variable."""
        for name, arr in self.arrays.items():
            arr[index] = np.asarray(fields[name], dtype=np.float32)

    def close(self) -> None:
        """Consolidate metadata so readers open the store with one request."""
        zarr.consolidate_metadata(self.path, zarr_format=2)

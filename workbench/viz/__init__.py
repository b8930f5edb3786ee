"""Plot builders shared by the dashboard (``apps/skill.py``) and the notebooks.

Every builder takes xarray / pandas objects in the workbench's layouts and returns a HoloViews object,
so the same picture appears in JupyterLab and in ``panel serve``:

* :func:`skill_curves` — a metric against lead time, one line per model, overall beside an extreme region;
* :func:`scorecard` — models x variables x lead times coloured by skill relative to a reference model;
* :func:`forecast_maps` / :func:`field_map` — truth, forecast, error and ensemble spread on the grid's own
  Lambert projection, rasterized by datashader, with event masks outlined and US state borders;
* :func:`event_frame` — the event browser's table: type, time, place, size and each model's error;
* :func:`grid_from_coords` — the Lambert grid a field's ``y``/``x`` coordinates lie on (for
  :meth:`~workbench.grids.LambertConformalGrid.nearest_index` and friends).

Importing this package is cheap; HoloViews loads with the first builder used.
"""

from __future__ import annotations

from workbench._lazy import lazy_exports

_EXPORTS = {
    "skill_curves": "workbench.viz.skill",
    "skill_frame": "workbench.viz.skill",
    "scorecard": "workbench.viz.scorecard",
    "relative_skill": "workbench.viz.scorecard",
    "field_map": "workbench.viz.maps",
    "field_image": "workbench.viz.maps",
    "forecast_maps": "workbench.viz.maps",
    "mask_outline": "workbench.viz.maps",
    "grid_from_coords": "workbench.viz.maps",
    "state_borders": "workbench.viz.borders",
    "state_at": "workbench.viz.borders",
    "event_frame": "workbench.viz.events",
    "event_errors": "workbench.viz.events",
    "Results": "workbench.workflow.results",
    "load_results": "workbench.workflow.load",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

"""The skill dashboard: where each model fails, overall and on extreme events.

Serve it with ``panel serve apps/skill.py --address 127.0.0.1`` (or ``workbench serve``), for this
machine only; SECURITY.md says how to expose it. It shows the embedded sample of the size named by
``$WORKBENCH_SAMPLE_SIZE`` (``tiny``, ``default`` - the default - or ``full``); the first start for a
size builds its forecasts, masks and scores into the cache (``$WORKBENCH_CACHE``) in the background
while the page shows its progress, and the dashboard replaces the progress view when it is ready (the
learned models join it later, in the same page); later starts read the cache. ``$WORKBENCH_SCORES`` (a
scores file or catalog entry) shows other scores, if the catalog names them. The selection lives in the
page's URL, so a view can be shared; a URL only selects among what the server already has (``?scores=``
names a scores file already in the forecast-store folder).
"""

import panel as pn

from workbench.viz.firststart import first_start_app

pn.extension("tabulator", notifications=False)

first_start_app().servable(title="Extreme Weather Workbench — skill")

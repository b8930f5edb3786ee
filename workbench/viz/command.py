"""``workbench serve``: the skill dashboard (the same page as ``panel serve apps/skill.py``)."""

from __future__ import annotations

import argparse
import logging
import os

SIZES = ("tiny", "default", "full")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the skill dashboard (skill curves, scorecard, maps, event browser)",
        description="Serve the skill dashboard on the embedded sample. The first start for a sample size "
        "builds its forecasts, event masks and scores into the cache ($WORKBENCH_CACHE); later starts "
        "read them. Open http://ADDRESS:PORT/skill in a browser.",
    )
    parser.add_argument(
        "--size",
        default=os.environ.get("WORKBENCH_SAMPLE_SIZE", "default"),
        choices=SIZES,
        help="sample size (default: $WORKBENCH_SAMPLE_SIZE or 'default')",
    )
    parser.add_argument(
        "--scores",
        default=None,
        help="a scores file (or catalog entry) to show instead of the sample's; it must lie in a "
        "location the catalog names",
    )
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); another address (0.0.0.0: every "
        "interface) exposes the dashboard to the network on purpose - read SECURITY.md first",
    )
    parser.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=None,
        metavar="HOST[:PORT]",
        help="extra origins allowed to connect (when served behind a proxy or on another address)",
    )
    parser.add_argument(
        "--learned",
        choices=("background", "wait", "off"),
        default=None,
        help="the learned models' forecasts (minutes on a CPU): made in a background process while the "
        "page shows the baselines (default; $WORKBENCH_DASHBOARD_LEARNED), waited for, or left out; "
        "--prepare waits unless told otherwise",
    )
    parser.add_argument("--show", action="store_true", help="open the page in a browser")
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only build (or check) the cached results for --size, then exit",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from workbench.workflow.load import load_results, open_catalog_scores

    if args.scores:
        open_catalog_scores(args.scores)  # refuse a path outside the catalog before starting anything
    if args.prepare:
        learned = args.learned or os.environ.get("WORKBENCH_DASHBOARD_LEARNED") or "wait"
        results = load_results(size=args.size, scores=args.scores, learned=learned)
        print(f"ready: {results.label}")
        for note in results.notes:
            print(f"  {note}")
        return 0

    import panel as pn

    from workbench.viz.access import EXPOSE_ENV, is_loopback
    from workbench.viz.firststart import first_start_app
    from workbench.workflow.firststart import first_start

    if args.learned:
        os.environ["WORKBENCH_DASHBOARD_LEARNED"] = args.learned  # read by every session's loader
    if not is_loopback(args.address) and args.address != "localhost":
        # an address other than loopback is the operator's deliberate choice to serve other machines
        os.environ[EXPOSE_ENV] = "1"
        print(f"exposed: visitors from other machines can open the page on {args.address} (see SECURITY.md)")

    def app():
        pn.extension("tabulator", notifications=False)
        return first_start_app(size=args.size, scores=args.scores)

    origins = [f"{args.address}:{args.port}", f"localhost:{args.port}", *(args.allow_websocket_origin or [])]
    # the steps of a first start go to this terminal; the page shows them too
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("workbench.workflow").setLevel(logging.INFO)
    first_start(args.size)  # start building (or opening) the results before the first visitor
    print(f"serving the skill dashboard at http://{args.address}:{args.port}/skill (Ctrl-C to stop)")
    pn.serve(
        {"skill": app},
        port=args.port,
        address=args.address,
        websocket_origin=origins,
        show=args.show,
        title="Extreme Weather Workbench — skill",
    )
    return 0

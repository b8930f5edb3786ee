"""The command line for a new user: fast --help, every option explained, one-line warnings, outputs in
one folder, the model zoo listed, readable summaries, shell completion."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from workbench import cli
from workbench.errors import DataNote

REPO = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, path: str = "workbench"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_help_is_fast_because_nothing_heavy_is_imported():
    code = (
        "import sys, time; t = time.perf_counter(); from workbench.cli import build_parser; build_parser()"
        ".format_help(); print(time.perf_counter() - t); print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO))).stdout.splitlines()
    seconds, modules = float(out[0]), set(out[1].split())
    heavy = {"pandas", "numpy", "xarray", "torch", "panel", "holoviews", "dask"} & modules
    assert not heavy, f"`workbench --help` imports {sorted(heavy)}"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - t0
    print(f"\nworkbench --help: parser built in {seconds * 1000:.0f} ms, whole process {wall:.2f} s")
    assert done.returncode == 0 and "models" in done.stdout and "completion" in done.stdout
    assert seconds < 0.5


def test_every_command_and_option_has_help_text():
    missing = []
    for path, parser in _parsers(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {c.dest}" for c in action._choices_actions if not c.help]
                continue
            if not (action.help or "").strip() or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help text: {missing}"


def test_a_warning_is_one_line_without_its_source(monkeypatch, capsys):
    def noisy(args):
        warnings.warn("the reports have\n   no coordinates", UserWarning, stacklevel=1)
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["catalog"].set_defaults(func=noisy)
    before = warnings.showwarning
    assert cli.main(["catalog"]) == 0
    err = capsys.readouterr().err
    assert err == "workbench catalog: warning: the reports have no coordinates\n"
    assert warnings.showwarning is before  # the process's own handler is back

    def informative(args):
        warnings.warn("12 reports have no latitude/longitude and were skipped", DataNote, stacklevel=1)
        return 0

    parser._subparsers._group_actions[0].choices["catalog"].set_defaults(func=informative)
    assert cli.main(["catalog"]) == 0
    assert capsys.readouterr().err == "workbench catalog: note: 12 reports have no latitude/longitude and were skipped\n"


def test_relative_outputs_go_to_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cli.OUT_DIR_ENV, raising=False)
    parser = cli.build_parser()
    args = parser.parse_args(["events", "sample_hrrr", "-o", "sub/events.nc"])
    cli._place_outputs(args)
    assert args.output == str(Path("workbench-output/sub/events.nc")) and (tmp_path / "workbench-output/sub").is_dir()

    args = parser.parse_args(["score", "forecasts", "--truth", "sample_hrrr", "-o", "s.nc", "--out-dir", "runs"])
    cli._place_outputs(args)
    assert args.output == str(Path("runs/s.nc"))

    monkeypatch.setenv(cli.OUT_DIR_ENV, str(tmp_path / "env-out"))
    args = parser.parse_args(["events", "sample_hrrr", "-o", "e.nc"])
    cli._place_outputs(args)
    assert args.output == str(tmp_path / "env-out" / "e.nc")

    absolute = str(tmp_path / "elsewhere" / "e.nc")
    args = parser.parse_args(["events", "sample_hrrr", "-o", absolute])
    cli._place_outputs(args)
    assert args.output == absolute
    # an input an earlier command wrote there is found there; one in the current folder wins
    (tmp_path / "runs" / "m.nc").write_text("")
    args = parser.parse_args(["score", "f", "--truth", "t", "--masks", "m.nc", "-o", "s2.nc", "--out-dir", "runs"])
    cli._place_outputs(args)
    assert args.masks == str(Path("runs/m.nc"))
    (tmp_path / "m.nc").write_text("")
    args = parser.parse_args(["score", "f", "--truth", "t", "--masks", "m.nc", "-o", "s2.nc", "--out-dir", "runs"])
    cli._place_outputs(args)
    assert args.masks == "m.nc"

    args = parser.parse_args(["train", "pangu", "--evaluate"])
    cli._place_outputs(args)
    assert args.evaluate == "-"  # stdout stays stdout

    assert "workbench-output/" in (REPO / ".gitignore").read_text().splitlines()


def test_models_lists_the_zoo_with_checkpoints_variables_and_steps(tmp_path, capsys):
    from workbench.models.registry import CHECKPOINT_DIR

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split()[0]: b for b in out.split("\n\n")[1:]}
    assert set(blocks) >= {"persistence", "climatology", "nwp", "pangu", "climax", "hrheim", "pangu_weather"}
    assert blocks["persistence"].split("\n")[0].split()[1] == "baseline:"
    pangu = blocks["pangu"]
    names = sorted(p.stem for p in CHECKPOINT_DIR.glob("pangu*.json"))
    assert f"checkpoints: {', '.join(names)}" in pangu
    steps = sorted(json.loads((CHECKPOINT_DIR / f"{n}.json").read_text())["config"]["time_step_hours"] for n in names)
    assert f"time steps:  {', '.join(f'{s:g} h' for s in steps)}" in pangu
    variables = json.loads((CHECKPOINT_DIR / f"{names[0]}.json").read_text())["config"]["variables"]
    assert f"variables:   {' '.join(variables)}" in pangu
    assert "learned:" in pangu.split("\n")[0]

    # an empty checkpoint folder: each learned model says how to get weights
    assert cli.main(["models", "--checkpoints", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "checkpoints: none (train: workbench train hrheim)" in out


def test_sample_prints_paths_and_sizes(tiny_sample, capsys):
    from workbench.sample.command import disk_size, human_size

    assert human_size(999) == "999 B" and human_size(1536) == "1.5 kB" and human_size(2.5e9) == "2.5 GB"
    assert cli.main(["sample", "--size", "tiny"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"sample 'tiny' in {tiny_sample.root} ({human_size(disk_size(tiny_sample.root))} on disk)"
    nwp = next(line for line in out if line.strip().startswith("NWP forecast"))
    assert nwp.split()[-1] == str(tiny_sample.nwp) and human_size(disk_size(tiny_sample.nwp)) in nwp
    assert "SamplePaths(" not in "\n".join(out)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_completes_commands_options_and_choices(tmp_path):
    script = tmp_path / "workbench.bash"
    script.write_text(cli.bash_completion(cli.build_parser()))

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        probe = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _workbench; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
        return sorted(done.stdout.split())

    assert complete("workbench", "sa") == ["sample"]
    assert complete("workbench", "mo") == ["models"]
    assert complete("workbench", "sample", "--size", "t") == ["tiny", "train"]
    assert complete("workbench", "score", "--out") == ["--out-dir", "--output"]
    assert complete("workbench", "infer", "--dt") == ["--dtype"]


@pytest.mark.slow
def test_tour_commands_print_no_python_warnings(tiny_sample, tmp_path):
    """The README tour's first commands, on the tiny sample: no warning lines, no source lines."""
    env = dict(os.environ, PYTHONPATH=str(REPO), WORKBENCH_OUT_DIR=str(tmp_path / "out"))
    for args in (
        ["catalog"],
        ["sample", "--size", "tiny"],
        ["events", "sample_hrrr", "--reports", "sample_reports", "--spc", "sample", "--param", "size=tiny",
         "-o", "events.nc"],
        ["events", "sample_hrrr", "--reports", "sample_reports", "--spc", "sample", "--param", "size=tiny",
         "--method", "hr-extreme", "-o", "events-hrx.nc"],
    ):
        done = subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        # notes (what was done with the data) are one line each; no Python warning, no source line
        noisy = [ln for ln in done.stderr.splitlines() if "warn" in ln.lower() or ln.startswith("  ")]
        assert not noisy, f"workbench {args[0]}: {noisy}"
    assert (tmp_path / "out" / "events.nc").exists() and (tmp_path / "out" / "events-hrx.nc").exists()


def test_score_summary_names_the_units(capsys):
    import numpy as np
    import xarray as xr

    from workbench.scoring.command import _print_summary

    coords = {"variable": ["t2m", "msl"], "lead_time": [1, 2], "region": ["all", "extreme"]}
    rmse = xr.DataArray(np.array([[[1.0, 3.0], [2.0, 5.0]], [[100.0, 300.0], [200.0, 500.0]]]), coords=coords)
    area = xr.full_like(rmse, 0.025)
    share = xr.full_like(rmse, 0.125)
    _print_summary(xr.Dataset({"rmse": rmse, "area_fraction": area, "error_share": share}), {"t2m": "K", "msl": "Pa"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["variable", "region", "rmse", "units", "area", "%", "error", "%"]
    # the mean over the two lead times: t2m (1+2)/2 K overall, (3+5)/2 K in extremes; msl in Pa
    assert lines[2].split() == ["t2m", "all", "1.5", "K", "2.50", "12.50"]
    assert lines[3].split() == ["t2m", "extreme", "4", "K", "2.50", "12.50"]
    assert lines[4].split() == ["msl", "all", "150", "Pa", "2.50", "12.50"]
    assert lines[5].split() == ["msl", "extreme", "400", "Pa", "2.50", "12.50"]

"""Every expected failure of the command line is one line on stderr and exit code 2, found before any work.

Each case failed before with a traceback (or, for the scheduler, a 30 s hang and a traceback; for an
unwritable output, only after the whole run).
"""

from __future__ import annotations

import time

import pytest

from workbench.cli import main

_INIT = "2020-06-02T00"


def _infer(tmp_path, *extra: str) -> list[str]:
    base = ["infer", "persistence", "--size", "tiny", "--store", str(tmp_path / "f.zarr"), "--no-progress"]
    if "--init" not in extra and "--init-range" not in extra:
        base += ["--init", _INIT]
    return [*base, *extra]


def _score(tmp_path, *extra: str, output: str | None = None) -> list[str]:
    return ["score", "sample_nwp", "--truth", "sample_hrrr", "-o", output or str(tmp_path / "s.nc"), "--quiet",
            *extra]  # fmt: skip


CASES = {
    "model banana": (
        lambda p: ["infer", "banana", "--init", _INIT, "--leads", "1", "--store", str(p / "f.zarr")],
        "banana",
    ),
    "forecast banana": (
        lambda p: ["score", "banana", "--truth", "sample_hrrr", "-o", str(p / "s.nc")],
        "'banana' is neither an existing file nor a catalog entry",
    ),
    "param size=huge": (lambda p: _score(p, "--param", "size=huge"), "size=huge is not one of the allowed"),
    "param without key": (lambda p: _score(p, "--param", "=tiny"), "KEY=VALUE"),
    "init yesterday": (
        lambda p: _infer(p, "--init", "yesterday", "--leads", "1"),
        "'yesterday' is not an ISO",
    ),
    "init banana": (lambda p: _infer(p, "--init", "banana", "--leads", "1"), "'banana' is not an ISO date"),
    "init-range banana": (
        lambda p: _infer(p, "--init-range", "2020-06-02", "2020-06-03", "banana", "--leads", "1"),
        "EVERY 'banana' is not a time step",
    ),
    "init-range with zero times": (
        lambda p: _infer(p, "--init-range", "2020-06-03", "2020-06-02", "1h", "--leads", "1"),
        "selects no times",
    ),
    "leads banana": (lambda p: _infer(p, "--leads", "banana"), "lead time 'banana'"),
    "leads 1e12": (lambda p: _infer(p, "--leads", "1e12"), "beyond the longest accepted, 8784 h"),
    "leads nan": (lambda p: _infer(p, "--leads", "nan"), "'nan' is not a number of hours"),
    "leads 1:2": (lambda p: _infer(p, "--leads", "1:2"), "must be START:STOP:STEP"),
    "leads -6": (lambda p: _infer(p, "--leads", "-6"), "is negative"),
    "members -1": (lambda p: _infer(p, "--leads", "1", "--members", "-1"), "--members must be at least 1"),
    "store under a file": (
        lambda p: [
            "infer",
            "persistence",
            "--size",
            "tiny",
            "--init",
            _INIT,
            "--leads",
            "1",
            "--store",
            str(p / "afile" / "f.zarr"),
        ],  # fmt: skip
        "cannot be written",
    ),
    "events start banana": (
        lambda p: [
            "events",
            "sample_hrrr",
            "--param",
            "size=tiny",
            "--start",
            "banana",
            "-o",
            str(p / "e.nc"),
        ],
        "--start 'banana' is not an ISO date",
    ),
    "output is a directory": (lambda p: _score(p, output=str(p / "dir.nc")), "is a directory; name a file"),
    "output under a file": (lambda p: _score(p, output=str(p / "afile" / "s.nc")), "cannot be written"),
    "output is a non-zarr directory": (
        lambda p: _score(p, "--overwrite", output=str(p / "plain.zarr")),
        "not a zarr store",
    ),
    "chunk-init -2": (lambda p: _score(p, "--param", "size=tiny", "--chunk-init", "-2"), "at least 1"),
    "malformed catalog": (
        lambda p: _score(p, "--catalog", str(p / "bad.yaml")),
        "not a valid Intake catalog",
    ),
    "empty catalog": (lambda p: _score(p, "--catalog", str(p / "empty.yaml")), "not a valid Intake catalog"),
    "catalog without entries": (
        lambda p: ["catalog", "--path", str(p / "no_entries.yaml")],
        "catalog without entries",
    ),
}


@pytest.fixture()
def workdir(tmp_path):
    (tmp_path / "dir.nc").mkdir()
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "plain.zarr" / "notes.txt").write_text("not a store")
    (tmp_path / "afile").write_text("a file, not a directory")
    (tmp_path / "bad.yaml").write_text("sources: [unclosed\n")
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "no_entries.yaml").write_text("metadata: {version: 1}\nsources: {}\n")
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_expected_failures_are_one_line_and_exit_code_2(case, workdir, capsys):
    argv, expected = CASES[case]
    code = main(argv(workdir))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"workbench {argv(workdir)[0]}: error: "), err
    assert expected in err
    # nothing was written where the output would go
    assert not (workdir / "s.nc").exists() and not (workdir / "f.zarr").exists()
    assert (workdir / "plain.zarr" / "notes.txt").read_text() == "not a store"


def test_unreachable_scheduler_fails_within_5_seconds(tmp_path, tiny_sample, capsys):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    code = main(_score(tmp_path, "--param", "size=tiny", "--scheduler", f"tcp://127.0.0.1:{port}"))
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--scheduler 'tcp://127.0.0.1:{port}' cannot be reached" in err
    assert elapsed < 5.0
    assert not (tmp_path / "s.nc").exists()


def test_scheduler_of_an_unknown_scheme_is_refused(tmp_path, capsys):
    assert main(_score(tmp_path, "--scheduler", "banana://x")) == 2
    assert "must be a tcp:// or tls:// address" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    """Only the package's own errors become one line; anything else is a bug and propagates."""
    import workbench.cli_inputs as cli_inputs

    def broken(items):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli_inputs, "parse_params", broken)
    import workbench.scoring.command as command

    monkeypatch.setattr(command, "parse_params", broken)
    with pytest.raises(ZeroDivisionError):
        main(_score(tmp_path))


def test_truth_in_degrees_c_labelled_k_is_refused_on_opening(tmp_path, tiny_sample, capsys):
    """Before, ``workbench score`` scored such a truth and reported an RMSE near 273 K."""
    import xarray as xr

    truth = xr.open_zarr(tiny_sample.hrrr)[["t2m"]].isel(time=slice(0, 12)).load()
    truth["t2m"] = truth["t2m"] - 273.15  # the attribute still says K
    path = tmp_path / "truth_degc.nc"
    truth.to_netcdf(path)
    argv = ["score", "sample_nwp", "--truth", str(path), "--param", "size=tiny", "-o", str(tmp_path / "s.nc")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Variable 't2m' in the " in err and "outside the plausible range 150 to 350 K" in err
    assert "degrees C labelled K" in err
    assert not (tmp_path / "s.nc").exists()


def test_infer_source_without_units_is_refused(tmp_path, tiny_sample, capsys):
    import xarray as xr

    source = xr.open_zarr(tiny_sample.hrrr).isel(time=slice(0, 3)).load()
    del source["t2m"].attrs["units"]
    source.to_netcdf(tmp_path / "source.nc")
    argv = ["infer", "persistence", "--source", str(tmp_path / "source.nc"), "--init", "2020-06-01T00",
            "--leads", "1", "--store", str(tmp_path / "f.zarr")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "In the --source" in err and "'t2m' has no 'units' attribute; expected 'K'" in err
    assert not (tmp_path / "f.zarr").exists()

"""Long forecasts show a progress bar on a terminal, never in a pipe or with --quiet."""

import io

import pytest

from climode.cli.main import main


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stderr,quiet,shown", [(Terminal, False, True), (io.StringIO, False, False),
                                                 (Terminal, True, False)])
def test_progress_bar_only_on_a_terminal(checkpoint, tmp_path, monkeypatch, stderr, quiet, shown):
    # CLIMODE_PROGRESS_DELAY=0: show the bar at once (by default only forecasts over 2 s show it)
    monkeypatch.setenv("CLIMODE_PROGRESS_DELAY", "0")
    err = stderr()
    monkeypatch.setattr("sys.stderr", err)
    code = main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h..+24h/3h", "--output",
                 str(tmp_path / "f.nc"), "--device", "cpu", *(["--quiet"] if quiet else [])])
    assert code == 0
    text = err.getvalue()
    assert ("climode forecast" in text and "step" in text) is shown, text
    if shown:  # the decoder's steps are counted: 8 leads of 3 h after the last observation
        assert "/" in text and "step" in text.rsplit("climode forecast", 1)[-1]


def test_forecasts_shorter_than_the_delay_stay_silent_on_a_terminal(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIMODE_PROGRESS_DELAY", "600")  # (2 s by default; a loaded machine may take longer)
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h", "--output", str(tmp_path / "f.nc"),
                 "--device", "cpu"]) == 0
    assert "climode forecast" not in err.getvalue() and "step" not in err.getvalue()


def test_the_bar_names_the_regridding_stages(forecaster, sample, monkeypatch, capsys):
    monkeypatch.setenv("CLIMODE_PROGRESS_DELAY", "0")
    coarse = sample[["U850", "V850", "PSL"]].isel(lat=slice(None, None, 2), lon=slice(None, None, 2))  # 3 degrees
    fc = forecaster.predict(coarse, "+3h", progress=True)
    err = capsys.readouterr().err
    assert "climode forecast: regridding" in err and "climode forecast: regridding back" in err
    assert fc.sizes["lon"] == coarse.sizes["lon"]

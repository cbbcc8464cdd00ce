"""Inputs a user has: float16 archives, numpy-printed inits, other names and units (issue 10)."""

import numpy as np
import pytest
import xarray as xr

from climode.cli.main import main


@pytest.fixture(scope="module")
def renamed(sample, tmp_path_factory):
    """The sample with u/v/slp names, PSL in hPa and no units anywhere."""
    ds = sample[["U850", "V850", "PSL"]].rename(U850="u", V850="v", PSL="slp")
    ds["slp"] = ds["slp"] / 100.0
    for name in ds.data_vars:
        ds[name].attrs = {}
    path = tmp_path_factory.mktemp("renamed") / "uvslp.nc"
    ds.to_netcdf(path)
    return path


def forecast(checkpoint, tmp_path, *args):
    return main(["forecast", "--checkpoint", str(checkpoint), "--times", "+3h", "--output", str(tmp_path / "f.nc"),
                 "--device", "cpu", "--quiet", *args])


def test_var_and_units_flags_map_a_file_with_other_names(checkpoint, forecaster, sample, renamed, tmp_path, capsys):
    assert forecast(checkpoint, tmp_path, "--data", str(renamed)) == 2
    err = capsys.readouterr().err
    assert "give them with --units" in err and "units={" not in err, err  # the command line's flag, not Python's
    assert forecast(checkpoint, tmp_path, "--data", str(renamed), "--var", "U850=u,V850=v,PSL=slp",
                    "--units", "U850=m/s,V850=m s-1,PSL=hPa") == 0
    got = xr.open_dataset(tmp_path / "f.nc")
    expected = forecaster.predict(sample, "+3h")
    np.testing.assert_allclose(got["PSL"].values, expected["PSL"].values, rtol=1e-5)
    assert got["PSL"].attrs["original_name"] == "slp"


@pytest.mark.parametrize("args,message", [
    (["--var", "U850=u,V850"], "--var: cannot read 'V850'"),
    (["--var", "T2M=t2m"], "--var: 'T2M' is not one of U850, V850, PSL"),
    (["--units", "PSL=furlongs"], "--units: PSL units 'furlongs' cannot be converted to Pa"),
])
def test_bad_var_and_units_name_the_flag(checkpoint, renamed, tmp_path, capsys, args, message):
    assert forecast(checkpoint, tmp_path, "--data", str(renamed), *args) == 2
    assert message in capsys.readouterr().err


def test_data_inspect_takes_the_same_flags(renamed, capsys):
    assert main(["data", "inspect", str(renamed), "--var", "PSL=slp,U850=u,V850=v", "--units",
                 "PSL=hPa,U850=m/s,V850=m/s"]) == 0
    out = capsys.readouterr().out
    assert "PSL" in out and "(from 'slp')" in out
    assert main(["data", "inspect", str(renamed)]) == 2
    assert "--units" in capsys.readouterr().err


def test_batch_spec_variables_and_units(checkpoint, renamed, tmp_path, capsys):
    def spec(extra):
        path = tmp_path / "spec.yaml"
        path.write_text(f"checkpoint: {checkpoint}\ndata: {renamed}\ninit: ['2000-08-03T09:00']\n"
                        f"output: {tmp_path / 'b.zarr'}\ndevice: cpu\n{extra}")
        return str(path)

    assert main(["batch", spec(""), "--dry-run"]) == 2
    assert "give them with units: {PSL: Pa} in the spec" in capsys.readouterr().err
    assert main(["batch", spec("variables: {U850: u, V850: v, PSL: slp}\nunits: {U850: m/s, V850: m/s, PSL: hPa}\n"),
                 "--dry-run"]) == 0
    assert "1 task(s)" in capsys.readouterr().out
    assert main(["batch", spec("units: {PSL: parsecs}\n"), "--dry-run"]) == 2
    assert "units: PSL units 'parsecs'" in capsys.readouterr().err
    assert main(["batch", spec(f"variables: {{PSL: slp}}\nunits: {{PSL: hPa}}\n").replace(
        f"output: {tmp_path / 'b.zarr'}", f"output: {renamed.parent}"), "--dry-run"]) == 2


def test_batch_output_may_not_be_an_input(checkpoint, sample, tmp_path, capsys):
    store = tmp_path / "obs.zarr"
    sample.to_zarr(store)
    path = tmp_path / "spec.yaml"
    path.write_text(f"checkpoint: {checkpoint}\ndata: {store}\ninit: ['2000-08-03T09:00']\noutput: {store}\n")
    assert main(["batch", str(path), "--dry-run"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert xr.open_zarr(store).sizes["time"] == 5


def test_float16_inputs_are_read_as_float32(checkpoint, forecaster, sample, tmp_path):
    half = sample[["U850", "V850", "PSL"]].copy()
    half["PSL"] = (half["PSL"] / 100.0).assign_attrs(units="hPa")
    half = half.astype(np.float16)  # 1010 hPa fits float16; 101000 Pa would not
    half.to_zarr(tmp_path / "half.zarr", zarr_format=2)
    assert forecast(checkpoint, tmp_path, "--data", str(tmp_path / "half.zarr")) == 0
    got = xr.open_dataset(tmp_path / "f.nc")
    expected = forecaster.predict(sample, "+3h")
    assert got["PSL"].dtype == np.float32 and np.isfinite(got["PSL"].values).all()
    # float16 keeps ~3 significant digits of hPa: within 1 hPa of the float32 forecast
    assert float(abs(got["PSL"] - expected["PSL"]).max()) < 100.0


@pytest.mark.parametrize("spelling", ["2000-08-03T09:00:00.000000000", "2000-08-03 09:00:00", "2000-08-03T09",
                                      "2000-08-03T09:00:00Z", "2000-08-03T11:00:00+02:00"])
def test_init_as_numpy_pandas_and_cftime_print_it(forecaster, sample, spelling):
    fc, info = forecaster.predict_with_info(sample, "+3h", init=spelling)  # what climode.run_forecast(init=...) calls
    assert str(fc["forecast_reference_time"].values[()]) == "2000-08-03 09:00:00"
    assert info.notes == []  # an observation time exactly, not "the last one before it"


def test_init_flag_takes_what_numpy_prints(checkpoint, sample, tmp_path, capsys):
    import json

    init = str(np.datetime64("2000-08-03T09:00", "ns"))
    assert init == "2000-08-03T09:00:00.000000000"
    assert main(["forecast", "--checkpoint", str(checkpoint), f"--init={init}", "--times", "+3h", "--output",
                 str(tmp_path / "f.nc"), "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["forecast_reference_time"] == "2000-08-03T09:00:00"

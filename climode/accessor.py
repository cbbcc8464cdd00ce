"""The ``climode`` xarray accessor: ``ds.climode.predict(times)``.

Registered when :mod:`climode` is imported; torch is imported only on use.
"""

from __future__ import annotations

import xarray as xr


@xr.register_dataset_accessor("climode")
class ClimodeDatasetAccessor:
    """Forecasts from any dataset :func:`climode.open_dataset` accepts."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def predict(self, times, model=None, basin=None, inputs=None, init=None, members=None,
                regrid_method: str = "bilinear", variables: dict[str, str] | None = None,
                units: dict[str, str] | None = None) -> xr.Dataset:
        """Fields at ``times`` (``"+3h,+6h"``, ``"60h"``, timestamps, ranges) from this dataset.

        ``model``: a :class:`climode.forecast.Forecaster`, a checkpoint path, or
        None for the bundled model.  Dask-backed data stay lazy: only the input
        time steps are read.  ``regrid_method``: ``bilinear`` or ``conservative``
        for data on another grid spacing than the model's.  ``variables``/``units`` map the
        data's names and units (``{'PSL': 'slp'}``, ``{'PSL': 'hPa'}``).
        """
        from climode.forecast import Forecaster, load_model

        forecaster = model if isinstance(model, Forecaster) else load_model(model)
        return forecaster.predict(self._ds, times, basin=basin, inputs=inputs, init=init, members=members,
                                  regrid_method=regrid_method, variables=variables, units=units)


@xr.register_dataarray_accessor("climode")
class ClimodeDataArrayAccessor:
    """Forecasts from a DataArray holding all of a model's variables on a ``variable`` dimension."""

    def __init__(self, da: xr.DataArray):
        self._da = da

    def predict(self, times, model=None, basin=None, inputs=None, init=None, members=None,
                units: dict[str, str] | None = None, regrid_method: str = "bilinear") -> xr.DataArray:
        """As ``Dataset.climode.predict``; ``units`` maps each variable to its units when the
        DataArray does not say (default: the model's own units, with a warning)."""
        import logging

        from climode.errors import DataError
        from climode.forecast import Forecaster, load_model

        if "variable" not in self._da.dims:
            raise DataError("DataArray.climode.predict needs a 'variable' dimension holding U850, V850 and PSL; "
                            "for a Dataset use ds.climode.predict")
        forecaster = model if isinstance(model, Forecaster) else load_model(model)
        ds = self._da.to_dataset(dim="variable")
        if units is None:
            units = forecaster.meta.units
            logging.getLogger(__name__).warning("DataArray has no per-variable units; assuming the model's: %s", units)
        out = forecaster.predict(ds, times, basin=basin, inputs=inputs, init=init, members=members, units=units,
                                 regrid_method=regrid_method)
        return out.to_dataarray(dim="variable")

"""climode.basins: basin boxes, seam-aware subsetting, and tilings.

- :func:`resolve_region`, :func:`subset`, :func:`box_indices`, :func:`list_regions`, :func:`to_0_360`
  for IBTrACS basins (NA, EP, WP, NI, SI, SP), their aliases and user boxes
  ``lat=5:60,lon=255:359``;
- :func:`paper_tiles` for the Vid-ODE paper's 60 x 160 degree global tiling;
- :class:`Tiler` and :func:`pad_to_multiple` to cut grids into model-sized
  tiles and stitch forecasts back onto the original grid.
"""

from climode.basins.boxes import (
    ALIASES,
    BASINS,
    BOX_SYNTAX,
    Region,
    box_indices,
    list_regions,
    parse_box,
    resolve_region,
    subset,
    to_0_360,
)
from climode.basins.tiles import AxisPlan, Tiler, TilePlan, pad_to_multiple, paper_tiles

__all__ = [
    "ALIASES",
    "BASINS",
    "BOX_SYNTAX",
    "AxisPlan",
    "Region",
    "TilePlan",
    "Tiler",
    "box_indices",
    "list_regions",
    "pad_to_multiple",
    "paper_tiles",
    "parse_box",
    "resolve_region",
    "subset",
    "to_0_360",
]

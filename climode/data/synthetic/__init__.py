"""climode.data.synthetic: deterministic synthetic worlds for training, tests and benchmarks.

:mod:`climode.data.synthetic.hurricanes` generates a CAM5-like North Atlantic
(U850, V850, PSL) with truth cyclone tracks; see docs/synthetic_hurricanes.md.
:mod:`climode.data.synthetic.atmosphere` runs the physical world (dinosaur's
Held-Suarez atmosphere with tropical cyclones; the ``physics`` extra); see docs/data.md.
"""

from climode.data.synthetic.hurricanes import (
    HurricaneWorldConfig,
    generate,
    generate_from_config,
    land_sea_mask,
    summarize,
    summarize_seasons,
)

__all__ = [
    "HurricaneWorldConfig",
    "generate",
    "generate_from_config",
    "land_sea_mask",
    "summarize",
    "summarize_seasons",
]

"""Build hook (everything else is in pyproject.toml): the wheel's data catalog is the top-level file.

``data_catalog.yaml`` at the top of the repository, where users look for it, is
the one source of truth; building a wheel copies it to
``climode/data/data_catalog.yaml``.  An editable install copies nothing: it
reads the checkout's own file (see :func:`climode.data.catalog.default_catalog_path`).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOG = "data_catalog.yaml"


class BuildPyWithCatalog(build_py):
    """``build_py`` that also puts the top-level catalog into the built package."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "climode" / "data" / CATALOG
            self.mkpath(str(target.parent))
            self.copy_file(str(Path(__file__).resolve().parent / CATALOG), str(target))


setup(cmdclass={"build_py": BuildPyWithCatalog})

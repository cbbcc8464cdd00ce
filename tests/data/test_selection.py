"""climode.data.selection: video or fields from the catalog's driver, periods of a split."""

import pytest

from climode.data.selection import catalog_entry, is_video, parse_period, split_period, video_datasets
from climode.errors import ConfigError
from climode.training.recipe import DataSection


def test_the_catalog_says_which_datasets_are_video(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIMODE_CATALOG", raising=False)
    assert set(video_datasets()) == {"bouncing_balls", "moving_mnist", "kth", "penn_action", "moving_gif"}
    assert is_video("kth") and not is_video("synthetic_hurricanes") and not is_video(None)
    assert not is_video("kth.nc") and catalog_entry("kth.nc") is None  # a path, not a name
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("datasets:\n  my_clips:\n    driver: video\n    paths: /nowhere\n")
    monkeypatch.setenv("CLIMODE_CATALOG", str(catalog))
    assert video_datasets() == ("my_clips",) and is_video("my_clips") and not is_video("kth")


def test_split_period_reads_the_sections_periods():
    section = DataSection(dataset="x.nc", periods={"train": "2000-01-01/2000-12-31", "test": "2001-01-01/2001-06-30"})
    assert split_period(section, "test") == ("2001-01-01", "2001-06-30")
    assert split_period(section, None) is None
    with pytest.raises(ConfigError, match="no period for split 'validation'"):
        split_period(section, "validation")
    with pytest.raises(ConfigError, match="ends before it starts"):
        parse_period("train", "2001-01-01/2000-01-01")

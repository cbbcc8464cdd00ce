import json

from climode.cli.main import main


def strict_loads(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name} (NaN must be written as null)")

    return json.loads(text, parse_constant=refuse)


def test_evaluate_writes_report_and_json(checkpoint, tmp_path, capsys, monkeypatch):
    import climode.evaluation

    real = climode.evaluation.evaluate

    def with_a_nan(*args, **kwargs):  # a score that cannot be computed, e.g. a track error with no hits
        results = real(*args, **kwargs)
        results["model"]["overall"]["track"]["track_error_km"] = float("nan")
        return results

    monkeypatch.setattr(climode.evaluation, "evaluate", with_a_nan)
    report, js = tmp_path / "r.md", tmp_path / "r.json"
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--windows", "3", "--sequences", "1",
                 "--baselines", "persistence", "--report", str(report), "--json", str(js), "--quiet", "--device", "cpu",
                 "--climatology-sequences", "1"])
    assert code == 0
    text = js.read_text()
    doc = strict_loads(text)  # standard JSON: scores that could not be computed are null
    assert "NaN" not in text
    assert set(doc) == {"model", "persistence", "meta"}
    assert doc["model"]["overall"]["track"]["track_error_km"] is None
    assert doc["meta"]["climatology"]["seeds"] == [0]
    assert "max_wind_error_ms" in doc["meta"]["intensity"]["model"]["overall"]
    assert "| persistence |" in report.read_text()


def test_two_runs_in_two_processes_write_byte_identical_json(tmp_path):
    """The README's command, small: the JSON holds no timing, and records what two runs must share."""
    import subprocess
    import sys

    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        proc = subprocess.run([sys.executable, "-m", "climode", "evaluate", "--data", "synthetic_hurricanes",
                               "--baselines", "persistence,advection", "--json", str(path), "--windows", "4",
                               "--sequences", "1", "--climatology-sequences", "1", "--batch-size", "4",
                               "--threads", "1", "--quiet", "--device", "cpu"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
    meta = strict_loads(paths[0].read_text())["meta"]["reproducibility"]
    assert meta["torch_threads"] == 1 and meta["versions"]["torch"] and meta["versions"]["climode"]

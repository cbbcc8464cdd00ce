import json

from climode.cli.main import main


def test_evaluate_writes_report_and_json(checkpoint, tmp_path, capsys):
    report, js = tmp_path / "r.md", tmp_path / "r.json"
    code = main(["evaluate", "--checkpoint", str(checkpoint), "--windows", "3", "--sequences", "1",
                 "--baselines", "persistence", "--report", str(report), "--json", str(js), "--quiet", "--device", "cpu"])
    assert code == 0
    doc = json.loads(js.read_text())
    assert set(doc) == {"model", "persistence", "meta"}
    assert "| persistence |" in report.read_text()

"""``climode evaluate`` on a video benchmark: a real (tiny) trained checkpoint, real bouncing-balls clips."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from climode.errors import ConfigError
from climode.evaluation import EvaluationConfig, evaluate
from climode.evaluation.report import markdown_report, results_json

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "bouncing_balls_extrapolation.yaml"
SMALL = dict(data="bouncing_balls", split="test", clips=3, windows=6, batch_size=3, bootstrap=50)


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    from climode.training.recipe import load_recipe
    from climode.training.trainer import Trainer

    overrides = ["train.max_steps=2", "train.epochs=null", "train.max_minutes=null", "train.discriminators=false",
                 "data.batch_size=2", "data.samples_per_epoch=4", "data.validation_split=null", "data.n_clips=4",
                 "data.protocol_args={n_inputs: 4, n_targets: 3}", "model.config.init_dim=8",
                 "model.config.n_downs=1", "model.config.ode_hidden=8",
                 "model.config.encoder_solver={method: euler, step_size: 0.05}",
                 "model.config.decoder_solver={method: euler, step_size: 0.05}"]
    run = tmp_path_factory.mktemp("video") / "run"
    Trainer(load_recipe(RECIPE, overrides), run, device="cpu", progress=False).fit()
    return run


@pytest.fixture(scope="module")
def video_model(video_run):
    from climode.forecast import load_model

    return load_model(str(video_run), "cpu", video=True)


@pytest.fixture(scope="module")
def video_results(video_model):
    return evaluate(video_model, EvaluationConfig(baselines=["persistence", "pysteps"], **SMALL), progress=False)


def test_every_system_has_the_image_metrics_per_lead_frame(video_results):
    systems = [k for k in video_results if k != "meta"]
    assert systems == ["model", "persistence", "pysteps"]
    for s in systems:
        assert list(video_results[s]["leads"]) == ["1", "2", "3"]
        for block in [video_results[s]["overall"], *video_results[s]["leads"].values()]:
            assert set(block) == {"ssim", "psnr", "mse", "mae"}
            assert -1 <= block["ssim"] <= 1 and block["psnr"] > 0 and 0 <= block["mae"] <= 1
    meta = video_results["meta"]
    assert meta["kind"] == "video" and meta["n_windows"] == 6 and meta["n_clips"] == 3
    lo, hi = meta["ci95"]["persistence"]["ssim"]
    assert lo <= video_results["persistence"]["overall"]["ssim"] <= hi
    json.loads(results_json(video_results))


def test_persistence_scores_match_a_direct_computation(video_model, video_results):
    """Persistence's MSE equals the mean squared difference of the last observed frame and the truth."""
    from climode.data.loader import WindowDataset
    from climode.data.sampling import get_protocol
    from climode.data.video import open_video_dataset

    clips = open_video_dataset("bouncing_balls", split="test", size=32).to_array(max_clips=3)
    protocol_meta = dict(video_model.meta.protocol)
    protocol = get_protocol(protocol_meta.pop("name"), **protocol_meta)
    dataset = WindowDataset(clips, None, protocol, video_model.normalizer, seed=0, samples_per_epoch=6)
    errors = []
    for i in range(len(dataset)):
        item = dataset[i]
        last = item["inputs"][item["input_mask"] > 0][-1].numpy()
        errors.append(((item["targets"].numpy() - last[None]) ** 2).mean())
    assert video_results["persistence"]["overall"]["mse"] == pytest.approx(float(np.mean(errors)), rel=1e-5)
    # moving balls: persistence gets worse with lead
    mse = [video_results["persistence"]["leads"][k]["mse"] for k in ("1", "2", "3")]
    assert mse[0] < mse[2]


def test_report_has_the_papers_table(video_results):
    text = markdown_report(video_results)
    assert "SSIM ↑" in text and "PSNR per lead frame" in text
    assert "| pysteps |" in text and "RMSE" not in text


def test_lpips_is_scored_with_local_weights(video_model, tmp_path):
    import torch
    from safetensors.torch import save_file

    from climode.metrics.image import lpips_weight_shapes

    torch.manual_seed(0)
    weights = {k: torch.rand(shape) * 0.1 for k, shape in lpips_weight_shapes().items()}
    path = tmp_path / "lpips_alex.safetensors"
    save_file(weights, str(path))
    res = evaluate(video_model, EvaluationConfig(baselines=["persistence"], lpips_weights=str(path),
                                                 **{**SMALL, "windows": 3}), progress=False)
    assert set(res["model"]["overall"]) == {"ssim", "psnr", "mse", "mae", "lpips"}
    assert res["persistence"]["overall"]["lpips"] >= 0


def test_climate_baseline_on_video_is_an_error(video_model):
    with pytest.raises(ConfigError, match="for climate fields"):
        evaluate(video_model, EvaluationConfig(baselines=["advection"], **SMALL), progress=False)


def test_video_checkpoint_on_climate_data_is_an_error(video_model):
    with pytest.raises(ConfigError, match="trained on video"):
        evaluate(video_model, EvaluationConfig(baselines=["persistence"]), progress=False)


def test_forecasting_with_a_video_model_is_refused(video_run):
    from climode.errors import CheckpointError
    from climode.forecast import load_model

    with pytest.raises(CheckpointError, match="video model"):
        load_model(str(video_run), "cpu")


def test_cli_scores_video_and_writes_json(video_run, tmp_path):
    out = tmp_path / "video.json"
    proc = subprocess.run([sys.executable, "-m", "climode", "evaluate", "--checkpoint", str(video_run),
                           "--data", "bouncing_balls", "--clips", "2", "--windows", "4", "--batch-size", "4",
                           "--json", str(out), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert [k for k in res if k != "meta"] == ["model", "persistence", "pysteps"]  # video defaults
    bad = subprocess.run([sys.executable, "-m", "climode", "evaluate", "--checkpoint", str(video_run),
                          "--data", "bouncing_balls", "--baselines", "advection", "--quiet"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "for climate fields" in bad.stderr


def test_interpolation_is_scored_against_blending_and_flow_on_the_bundled_model():
    from climode.forecast import load_model
    from climode.forecast.video import BUNDLED_VIDEO

    model = load_model(BUNDLED_VIDEO, "cpu", video=True)
    config = EvaluationConfig(data="bouncing_balls", interpolate=4, windows=8, clips=4, batch_size=8,
                              baselines=["blend", "flow"], bootstrap=50)
    results = evaluate(model, config, progress=False)
    assert set(results) == {"model", "model_no_mirrors", "model_two_way_mean", "model_forward_only", "blend", "flow",
                            "meta"}
    assert results["meta"]["task"] == "interpolation x4"
    assert list(results["model"]["leads"]) == ["1", "2", "3"]  # frames after the previous input
    # mid-gap both runs weigh half, so the nearness-weighted blend is the plain mean there, and not elsewhere
    weighted, mean = results["model_no_mirrors"]["leads"], results["model_two_way_mean"]["leads"]
    assert weighted["2"]["psnr"] == pytest.approx(mean["2"]["psnr"], abs=1e-9)
    assert weighted["1"]["psnr"] != pytest.approx(mean["1"]["psnr"], abs=1e-3)
    # the two-way model beats the cross-fade on these coloured balls
    assert results["model"]["overall"]["psnr"] > results["blend"]["overall"]["psnr"]
    assert "interpolation x4" in markdown_report(results)


def test_continuation_is_also_scored_chunk_by_chunk_as_climode_extrapolate_runs_it():
    """The bundled model is trained to +3 frames: 10 leads are scored from one decoder solve ("model") and
    3 frames at a time with its frames fed back, with and without the mirror self-ensemble ("model_chunked",
    "model_chunked_no_mirrors"); without mirrors the first chunk is the same forecast."""
    import torch

    from climode.forecast import load_model
    from climode.forecast.video import BUNDLED_VIDEO, ChunkedContinuation

    model = load_model(BUNDLED_VIDEO, "cpu", video=True)
    config = EvaluationConfig(data="bouncing_balls", windows=8, clips=4, batch_size=8, baselines=["persistence"],
                              bootstrap=50)
    results = evaluate(model, config, progress=False)
    assert set(results) == {"model", "model_chunked", "model_chunked_no_mirrors", "persistence", "meta"}
    assert list(results["model_chunked"]["leads"]) == [str(k) for k in range(1, 11)]
    single = results["model_chunked_no_mirrors"]["leads"]
    for lead in ("1", "2", "3"):  # without mirrors, the first chunk is the one-solve forecast
        assert single[lead]["psnr"] == pytest.approx(results["model"]["leads"][lead]["psnr"], rel=1e-4)
        assert results["model_chunked"]["leads"][lead]["psnr"] != pytest.approx(single[lead]["psnr"], rel=1e-4)
    assert single["10"]["psnr"] != results["model"]["leads"]["10"]["psnr"]

    calls = []

    class Last(torch.nn.Module):  # predicts the newest input everywhere, and records its calls
        def forward(self, inputs, times, queries, mask=None):
            calls.append((inputs[0, :, 0, 0, 0].tolist(), list(times[0]), list(queries[0])))
            return type("Out", (), {"frames": inputs[:, -1:].expand(-1, len(queries[0]), -1, -1, -1) + 1})()

    frames = torch.arange(3.0).reshape(1, 3, 1, 1, 1).expand(1, 3, 1, 2, 2) / 10
    out = ChunkedContinuation(Last(), n_inputs=3, chunk=2)(frames, [0.0, 1.0, 2.0], [3.0, 4.0, 5.0, 6.0, 7.0]).frames
    assert [c[2] for c in calls] == [[3.0, 4.0], [5.0, 6.0], [7.0]]
    assert calls[1][1] == [2.0, 3.0, 4.0] and calls[1][0] == pytest.approx([0.2, 1.0, 1.0])  # clipped to [0, 1]
    assert out.shape == (1, 5, 1, 2, 2)
    with pytest.raises(Exception, match="after the inputs"):
        ChunkedContinuation(Last(), 3, 2)(frames, [0.0, 1.0, 2.0], [1.5])

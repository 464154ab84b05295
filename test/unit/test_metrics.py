"""Tests of lutfuse_ros.metrics and the ``lutfuse eval`` subcommand.

Golden values come from ``shared/metrics/metric_golden.json`` (the CDDFuse / MMDRFuse reference
evaluators on four RoadScene pairs); the tests needing shared data skip when it is absent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from sklearn.metrics import mutual_info_score

from lutfuse_ros.cli.main import main
from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics import (
    AVERAGE_LABEL,
    MAX_LABEL,
    METRIC_NAMES,
    average_gradient,
    baseline_images,
    correlation_coefficient,
    edge_preservation_qabf,
    entropy,
    evaluate_folder,
    evaluate_pair,
    mean_squared_error,
    mutual_information,
    mutual_information_pair,
    peak_signal_to_noise_ratio,
    read_gray,
    spatial_frequency,
    ssim_pair,
    standard_deviation,
    structural_similarity_sum,
    sum_of_correlations_of_differences,
    to_json,
    to_markdown,
    vif_pair,
    visual_information_fidelity,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GOLDEN_FILE = SHARED / "metrics" / "metric_golden.json"
ROADSCENE_TEST = SHARED / "data" / "roadscene" / "test"
LUTFUSE_OUTPUTS = SHARED / "reference_outputs" / "lutfuse"

needs_golden = pytest.mark.skipif(not GOLDEN_FILE.is_file(),
                                  reason=f"shared golden metrics not found at {GOLDEN_FILE}")
needs_roadscene = pytest.mark.skipif(
    not (ROADSCENE_TEST.is_dir() and LUTFUSE_OUTPUTS.is_dir()),
    reason=f"RoadScene test split or LUT-Fuse reference outputs not found under {SHARED}")

#: relative tolerance per golden metric (SSIM with data_range=2 is float32-sensitive).
GOLDEN_RTOL = {"SSIM": 2e-3, "SSIM_ir": 2e-3, "SSIM_vi": 2e-3}
DEFAULT_RTOL = 1e-5
PAIR_METRICS = (correlation_coefficient, edge_preservation_qabf, mean_squared_error,
                mutual_information, peak_signal_to_noise_ratio, structural_similarity_sum,
                sum_of_correlations_of_differences, visual_information_fidelity, evaluate_pair)


# ------------------------------------------------------------------------------- helpers
def _golden() -> dict:
    return json.loads(GOLDEN_FILE.read_text())


def _golden_pairs() -> list[dict]:
    return _golden()["pairs"] if GOLDEN_FILE.is_file() else []


def _reference_value(entry: dict) -> float:
    for source in ("cddfuse_eval", "mmdrfuse_eval", "harness_extra"):
        if entry.get(source) is not None:
            return entry[source]
    raise AssertionError(f"golden entry without a value: {entry}")


@functools.lru_cache(maxsize=None)
def _computed_metrics(pair_index: int) -> dict[str, float]:
    """Every metric of the golden file, computed by lutfuse_ros for one golden pair."""
    pair = _golden_pairs()[pair_index]
    fused, ir, vi = (read_gray(SHARED / pair[key]) for key in ("fused_file", "ir_file", "vi_file"))
    values = dict(evaluate_pair(fused, ir, vi))
    values["MSE"] = mean_squared_error(fused, ir, vi)
    values["SSIM_ir"] = ssim_pair(fused, ir)
    values["SSIM_vi"] = ssim_pair(fused, vi)
    values["SSIM_dr255"] = structural_similarity_sum(fused, ir, vi, data_range=255.0)
    values["VIF_modfn"] = vif_pair(ir, fused) + vif_pair(vi, fused)
    return values


def _textured_image(seed: int, shape: tuple[int, int] = (64, 80)) -> np.ndarray:
    """A smooth random gray image with integer values 0..255."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(shape[0] // 8 + 1, shape[1] // 8 + 1))
    image = np.kron(coarse, np.ones((8, 8)))[: shape[0], : shape[1]]
    return np.round(np.clip(image + rng.normal(0, 10, size=shape), 0, 255))


# -------------------------------------------------------------------------- golden values
@pytest.mark.shared
@needs_golden
@pytest.mark.parametrize("pair_index", range(4))
def test_golden_file_inputs_are_the_expected_images(pair_index: int) -> None:
    pair = _golden_pairs()[pair_index]
    for role, digest in pair["sha256"].items():
        path = SHARED / pair[f"{role}_file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{path} changed"
    assert list(read_gray(SHARED / pair["fused_file"]).shape) == pair["shape_hw"]


@pytest.mark.shared
@needs_golden
@pytest.mark.parametrize("pair_index", range(4))
@pytest.mark.parametrize("metric", [*METRIC_NAMES, "MSE", "SSIM_ir", "SSIM_vi", "SSIM_dr255",
                                    "VIF_modfn"])
def test_metric_matches_reference_implementations(pair_index: int, metric: str) -> None:
    expected = _reference_value(_golden_pairs()[pair_index]["metrics"][metric])
    actual = _computed_metrics(pair_index)[metric]
    rtol = GOLDEN_RTOL.get(metric, DEFAULT_RTOL)
    assert actual == pytest.approx(expected, rel=rtol), f"{metric} of pair {pair_index}"


# ---------------------------------------------------------------------- behaviour: values
def test_entropy_of_constant_image_is_zero_and_of_uniform_levels_is_eight_bits() -> None:
    assert entropy(np.full((20, 30), 117.0)) == 0.0
    all_levels = np.arange(256, dtype=np.float64).reshape(16, 16)
    assert entropy(all_levels) == pytest.approx(8.0)


def test_ssim_of_an_image_with_itself_is_maximal() -> None:
    ir, vi = _textured_image(1), _textured_image(2)
    assert ssim_pair(ir, ir) == pytest.approx(1.0)
    assert ssim_pair(ir, vi) < 0.9
    noisy = np.clip(ir + np.random.default_rng(3).normal(0, 20, ir.shape), 0, 255)
    assert ssim_pair(ir, ir) > ssim_pair(ir, np.round(noisy))
    assert structural_similarity_sum(ir, ir, ir) == pytest.approx(2.0)


def test_vif_of_an_image_with_itself_is_one() -> None:
    image = _textured_image(4)
    assert vif_pair(image, image) == pytest.approx(1.0)
    assert vif_pair(image, np.full_like(image, 128.0)) == pytest.approx(0.0, abs=1e-12)


def test_mi_is_symmetric_in_the_roles_of_the_sources() -> None:
    ir, vi = _textured_image(5), _textured_image(6)
    fused = np.maximum(ir, vi)
    assert mutual_information(fused, ir, vi) == pytest.approx(mutual_information(fused, vi, ir))
    assert mutual_information_pair(ir, vi) == pytest.approx(mutual_information_pair(vi, ir))


@pytest.mark.filterwarnings("ignore:Clustering metrics expects discrete values")
def test_mi_treats_every_distinct_value_as_a_label_like_sklearn() -> None:
    ir, vi = _textured_image(7, (24, 24)), _textured_image(8, (24, 24))
    unrounded_average = (ir + vi) / 2.0  # half-integer values are distinct labels
    expected = mutual_info_score(unrounded_average.ravel(), ir.ravel())
    assert mutual_information_pair(unrounded_average, ir) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, (6, 7)), arrays(np.uint8, (6, 7)))
def test_mi_is_non_negative_and_bounded_by_entropy(first: np.ndarray, second: np.ndarray) -> None:
    information = mutual_information_pair(first, second)
    assert information >= 0.0
    assert information / np.log(2) <= min(entropy(first), entropy(second)) + 1e-9


def test_psnr_is_infinite_and_mse_zero_for_identical_images() -> None:
    image = _textured_image(9)
    assert mean_squared_error(image, image, image) == 0.0
    assert peak_signal_to_noise_ratio(image, image, image) == float("inf")
    assert peak_signal_to_noise_ratio(image + 1, image, image) == pytest.approx(
        10 * np.log10(255.0 ** 2))


def test_correlation_and_scd_of_a_copy_of_one_source() -> None:
    ir, vi = _textured_image(10), _textured_image(11)
    assert correlation_coefficient(ir, ir, ir) == pytest.approx(1.0)
    # fused = ir + vi makes fused - vi equal ir and fused - ir equal vi: SCD = 2
    assert sum_of_correlations_of_differences(ir + vi, ir, vi) == pytest.approx(2.0)


def test_qabf_rewards_kept_edges_over_a_flat_image() -> None:
    ir, vi = _textured_image(12), _textured_image(13)
    assert edge_preservation_qabf(np.maximum(ir, vi), ir, vi) > 0.3
    # only the zero-padded border of a flat image has "edges" (the reference's padding)
    assert edge_preservation_qabf(np.full_like(ir, 100.0), ir, vi) < 0.1
    assert np.isnan(edge_preservation_qabf(ir, np.zeros_like(ir), np.zeros_like(ir)))


def test_gradient_metrics_on_a_horizontal_ramp() -> None:
    ramp = np.tile(np.arange(50, dtype=np.float64), (30, 1))
    assert spatial_frequency(ramp) == pytest.approx(1.0)
    assert average_gradient(ramp) == pytest.approx(np.sqrt(0.5))
    assert standard_deviation(ramp) == pytest.approx(np.std(np.arange(50)))


def test_baselines_are_truncated_average_and_maximum() -> None:
    ir = np.array([[0.0, 10.0], [255.0, 3.0]])
    vi = np.array([[1.0, 20.0], [254.0, 3.0]])
    images = baseline_images(ir, vi)
    np.testing.assert_array_equal(images[AVERAGE_LABEL], [[0.0, 15.0], [254.0, 3.0]])
    np.testing.assert_array_equal(images[MAX_LABEL], [[1.0, 20.0], [255.0, 3.0]])


# ---------------------------------------------------------------------- behaviour: errors
@pytest.mark.parametrize("metric", PAIR_METRICS, ids=lambda function: function.__name__)
def test_metrics_reject_mismatched_shapes(metric) -> None:
    fused, ir, vi = np.zeros((48, 48)), np.zeros((48, 48)), np.zeros((48, 50))
    with pytest.raises(InputError, match=r"same shape.*vi \(48, 50\)"):
        metric(fused, ir, vi)


def test_metrics_reject_colour_nan_and_too_small_images() -> None:
    with pytest.raises(InputError, match=r"image: expected a gray image of shape \(H, W\)"):
        entropy(np.zeros((8, 8, 3)))
    with pytest.raises(InputError, match="NaN or infinite"):
        spatial_frequency(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(InputError, match="too small"):
        visual_information_fidelity(np.zeros((40, 60)), np.zeros((40, 60)), np.zeros((40, 60)))


def test_read_gray_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    with pytest.raises(InputError, match="missing.png: no such file"):
        read_gray(missing)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    with pytest.raises(InputError, match="garbage.png: OpenCV could not decode"):
        read_gray(garbage)


# ----------------------------------------------------------------------- folders and CLI
def _make_folders(tmp_path: Path, stems: list[str]) -> tuple[Path, Path, Path]:
    """Copy RoadScene sources and LUT-Fuse outputs for ``stems`` into tmp_path."""
    folders = tuple(tmp_path / name for name in ("fused", "ir", "vi"))
    for folder in folders:
        folder.mkdir()
    fused_dir, ir_dir, vi_dir = folders
    for stem in stems:
        shutil.copy(LUTFUSE_OUTPUTS / f"{stem}.png", fused_dir)
        shutil.copy(ROADSCENE_TEST / "ir" / f"{stem}.jpg", ir_dir)
        shutil.copy(ROADSCENE_TEST / "vi" / f"{stem}.jpg", vi_dir)
    return fused_dir, ir_dir, vi_dir


@pytest.mark.shared
@needs_roadscene
def test_evaluate_folder_skips_and_lists_bad_pairs(tmp_path: Path) -> None:
    fused_dir, ir_dir, vi_dir = _make_folders(tmp_path, ["FLIR_00211"])
    (fused_dir / "broken.png").write_bytes(b"\x89PNG truncated")
    shutil.copy(LUTFUSE_OUTPUTS / "FLIR_00977.png", fused_dir)  # sources missing
    report = evaluate_folder(fused_dir, ir_dir, vi_dir, progress=False)
    assert list(report.rows) == ["FLIR_00211"]
    assert set(report.skipped) == {"broken", "FLIR_00977"}
    assert "no ir image named FLIR_00977" in report.skipped["FLIR_00977"]
    assert report.means == report.rows["FLIR_00211"]
    table = to_markdown({"lut": report})
    assert table.splitlines()[2].startswith("| lut | ")
    assert "2 skipped" in table
    assert json.loads(to_json({"lut": report}))["methods"]["lut"]["count"] == 1


@pytest.mark.shared
@needs_roadscene
@needs_golden
def test_eval_command_writes_json_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    golden = {Path(pair["fused_file"]).stem: pair["metrics"] for pair in _golden_pairs()}
    stems = ["FLIR_00211", "FLIR_00977", "FLIR_01130"]
    fused_dir, ir_dir, vi_dir = _make_folders(tmp_path, stems)
    prefix = tmp_path / "results" / "roadscene"
    command = ["eval", f"lut={fused_dir}", "--ir", str(ir_dir), "--vi", str(vi_dir),
               "--out", str(prefix), "--no-progress"]

    assert main(command) == 0
    table = capsys.readouterr().out
    assert "| method | EN | SD | SF | AG | MI | SCD | VIF | Qabf | SSIM | CC | PSNR |" in table
    assert "| lut | " in table
    document = json.loads(prefix.with_suffix(".json").read_text())
    method = document["methods"]["lut"]
    assert method["count"] == 3 and method["skipped"] == {}
    for stem in stems:
        for name in METRIC_NAMES:
            expected = _reference_value(golden[stem][name])
            assert method["images"][stem][name] == pytest.approx(expected, rel=2e-3), name
    assert method["means"]["EN"] == pytest.approx(
        np.mean([method["images"][stem]["EN"] for stem in stems]))
    assert prefix.with_suffix(".md").read_text() == table

    before = prefix.with_suffix(".json").read_bytes()
    assert main(command) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert prefix.with_suffix(".json").read_bytes() == before

    assert main([*command, "--force", "--baselines"]) == 0
    rerun = json.loads(prefix.with_suffix(".json").read_text())
    assert list(rerun["methods"]) == ["lut", AVERAGE_LABEL, MAX_LABEL]
    assert rerun["methods"][MAX_LABEL]["count"] == 3
    assert not list(prefix.parent.glob("*.tmp"))


@pytest.mark.shared
@needs_roadscene
def test_eval_command_rejects_duplicate_labels(tmp_path: Path, capsys) -> None:
    fused_dir, ir_dir, vi_dir = _make_folders(tmp_path, ["FLIR_00211"])
    code = main(["eval", f"a={fused_dir}", f"a={fused_dir}", "--ir", str(ir_dir),
                 "--vi", str(vi_dir), "--no-progress"])
    assert code == 1
    assert "label 'a' given twice" in capsys.readouterr().err

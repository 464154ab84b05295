"""The fast CPU path computes the reference modules' function (fp32 exactly, bf16 closely)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lutfuse_ros.artifacts import Artifact, make_manifest
from lutfuse_ros.backends.cpu_kernels import build_fast_model, resolve_precision
from lutfuse_ros.families.mini.fast_kernel import FastMini
from lutfuse_ros.backends.cpu_kernels.conv_ops import BorderPlan
from lutfuse_ros.families.mmlut.fast_lattice import LatticeLookup
from lutfuse_ros.backends.cpu_kernels.precision import (bf16_probe_error,
                                                        bf16_unsupported_reason,
                                                        cpu_has_native_bf16)
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.backends.torch_backend import TorchBackend
from lutfuse_ros.colour import luma_plane, merge_luma_chroma, replace_luma, split_luma_chroma
from lutfuse_ros.families.features import rgb_to_luma
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families.mini.model import MiniFusionNet
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.lattice import quadrilinear_lookup
from lutfuse_ros.pipeline import FusionPipeline


#: Tests that run bf16 convolutions skip where torch/oneDNN cannot (AVX2-only CPUs).
needs_bf16_convolutions = pytest.mark.skipif(
    bf16_unsupported_reason() is not None,
    reason=f"needs native bf16 convolutions: {bf16_unsupported_reason()}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def random_frame(height: int, width: int, seed: int = 0, order: str = "bgr",
                 gray: bool = False) -> FrameInputs:
    rng = np.random.default_rng(seed)
    shape = (height, width) if gray else (height, width, 3)
    # smooth-ish content plus noise, so gradients and contexts vary like in real images
    base = rng.integers(0, 256, shape, dtype=np.uint8)
    visible = np.clip(base.astype(np.int16) // 2 + 60, 0, 255).astype(np.uint8)
    thermal = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return FrameInputs(visible, order, thermal, luma_plane(visible, order))


def random_mmlut(bins: int = 16, channels: int = 16, blocks: int = 3, lattice: str = "official",
                 seed: int = 0) -> MMLUT:
    torch.manual_seed(seed)
    model = MMLUT(bins=bins, context_channels=channels, context_blocks=blocks, lattice=lattice)
    with torch.no_grad():
        model.lut.normal_(0.5, 0.5)
        for module in model.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-2.0, 2.0)   # large shifts: the border repair matters
    return model.eval()


def module_output(model: torch.nn.Module, frame: FrameInputs) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(frame.visible_rgb()),
                     torch.from_numpy(frame.infrared()))[0, 0].numpy()


def as_artifact(model: torch.nn.Module) -> Artifact:
    manifest = make_manifest(model, name="test-model", description="test", provenance={})
    return Artifact(None, manifest, model.state_dict())


@pytest.mark.parametrize("bins, channels, blocks, lattice", [
    (16, 16, 3, "official"), (17, 8, 2, "endpoint"), (9, 12, 0, "official"),
    (5, 4, 1, "endpoint")])
@pytest.mark.parametrize("size", [(37, 61), (2, 2), (16, 3)])
def test_mmlut_fp32_matches_module(bins, channels, blocks, lattice, size):
    model = random_mmlut(bins, channels, blocks, lattice)
    fast = build_fast_model(model, "fp32")
    frame = random_frame(*size)
    expected = module_output(model, frame)
    np.testing.assert_allclose(fast.infer_frame(frame), expected, atol=2e-5, rtol=0)
    np.testing.assert_allclose(fast.infer(frame.visible_rgb(), frame.infrared()), expected,
                               atol=5e-4, rtol=0)


@pytest.mark.parametrize("order, gray", [("rgb", False), ("bgr", False), ("bgr", True)])
def test_mmlut_fp32_channel_orders_and_gray(order, gray):
    model = random_mmlut(bins=8, channels=8, blocks=1)
    frame = random_frame(23, 31, seed=3, order=order, gray=gray)
    np.testing.assert_allclose(build_fast_model(model, "fp32").infer_frame(frame),
                               module_output(model, frame), atol=2e-5, rtol=0)


def test_border_pixels_are_repaired_exactly():
    # With large InstanceNorm shifts the folded bias is far off on the border; the repair
    # must bring the border rows and columns back to the module's values.
    model = random_mmlut(bins=6, channels=8, blocks=2, seed=5)
    frame = random_frame(19, 27, seed=5)
    fast = build_fast_model(model, "fp32")
    with torch.inference_mode():
        expected = model.context(torch.from_numpy(frame.visible_rgb()) * 255.0,
                                 torch.from_numpy(frame.infrared()) * 255.0)[0, 0]
        network_input = fast.context.network.input_from_uint8(frame.visible, frame.thermal)
        got = torch.sigmoid(fast.context.network.forward(network_input, "bgr"))
    border = torch.zeros_like(got, dtype=torch.bool)
    border[0], border[-1], border[:, 0], border[:, -1] = True, True, True, True
    assert (got[border] - expected[border]).abs().max() < 1e-5
    assert (got[~border] - expected[~border]).abs().max() < 1e-5


def test_border_plan_counts_outside_taps():
    plan = BorderPlan(4, 5)
    assert plan.index.numel() == 4 * 5 - 2 * 3
    corner = plan.outside[plan.index.tolist().index(0)].view(3, 3)
    assert corner.tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]
    edge = plan.outside[plan.index.tolist().index(2)].view(3, 3)   # top row, middle
    assert edge.tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("bins, lattice", [(2, "official"), (3, "endpoint"), (16, "official"),
                                           (17, "endpoint")])
def test_lattice_lookup_matches_quadrilinear_reference(bins, lattice):
    torch.manual_seed(bins)
    table = torch.randn(bins, bins, bins, bins)
    coords = [torch.rand(13, 17) * (bins + 1.0) - 0.5 for _ in range(4)]   # out of range too
    coords[0][0, :4] = torch.tensor([0.0, bins - 1.0, bins - 2.0, bins + 0.5])
    lookup = LatticeLookup(table)
    expected = quadrilinear_lookup(table, [c[None, None] for c in coords])[0, 0]
    torch.testing.assert_close(lookup.lookup(*coords), expected, atol=2e-5, rtol=0)


def test_lattice_uint8_infrared_axis_matches_float_axis():
    torch.manual_seed(1)
    table = torch.randn(16, 16, 16, 16)
    scale = MMLUT(bins=16).scale
    levels = torch.arange(256, dtype=torch.float32) * float(np.float32(1 / 255)) * scale
    lookup = LatticeLookup(table, levels)
    thermal = torch.randint(0, 256, (9, 11), dtype=torch.uint8)
    coords = [torch.rand(9, 11) * 15.9 for _ in range(3)]
    expected = quadrilinear_lookup(table, [c[None, None] for c in coords] +
                                   [levels[thermal.long()][None, None]])[0, 0]
    torch.testing.assert_close(lookup.lookup_uint8_infrared(*coords, thermal), expected,
                               atol=2e-5, rtol=0)


@pytest.mark.parametrize("hidden, quantise", [(4, True), (6, True), (4, False)])
@pytest.mark.parametrize("size", [(37, 61), (2, 2), (2, 7)])
def test_mini_matches_module(hidden, quantise, size):
    torch.manual_seed(hidden)
    model = MiniFusionNet(hidden=hidden, quantise_input=quantise).eval()
    fast = build_fast_model(model, "bf16")   # the mini-model ignores bf16: always fp32
    frame = random_frame(*size, seed=2)
    expected = module_output(model, frame)
    np.testing.assert_allclose(fast.infer_frame(frame), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(fast.infer(frame.visible_rgb(), frame.infrared()), expected,
                               atol=1e-6, rtol=0)


def frame_level_mini(quantise: bool = True, seed: int = 5) -> MiniFusionNet:
    torch.manual_seed(seed)
    model = MiniFusionNet(hidden=4, quantise_input=quantise, frame_level=True).eval()
    with torch.no_grad():
        model.level.weight.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("quantise", [True, False])
@pytest.mark.parametrize("size, workers", [((37, 61), 1), ((240, 320), 2), ((2, 2), 1)])
def test_frame_level_mini_matches_module(quantise, size, workers):
    model = frame_level_mini(quantise)
    assert sum(p.numel() for p in model.parameters()) == 113 + 10
    fast = FastMini(model, workers=workers)
    frame = random_frame(*size, seed=3)
    expected = module_output(model, frame)
    np.testing.assert_allclose(fast.infer_frame(frame), expected, atol=2e-6, rtol=0)
    np.testing.assert_allclose(fast.infer(frame.visible_rgb(), frame.infrared()), expected,
                               atol=2e-6, rtol=0)
    fast.close()


@pytest.mark.parametrize("size, workers", [((37, 61), 1), ((240, 320), 2), ((2, 2), 1)])
def test_centre_tap_mini_runs_per_pixel_and_matches_module(size, workers):
    model = frame_level_mini(seed=8)
    with torch.no_grad():
        for conv in (model.conv1[1], model.conv2[1]):
            centre = conv.weight[..., 1, 1].clone()
            conv.weight.zero_()
            conv.weight[..., 1, 1] = centre
    fast = FastMini(model, workers=workers)
    assert fast.per_pixel and not FastMini(frame_level_mini(seed=8)).per_pixel
    frame = random_frame(*size, seed=6)
    np.testing.assert_allclose(fast.infer_frame(frame), module_output(model, frame), atol=2e-6,
                               rtol=0)
    fast.close()


def test_the_shipped_mini_model_is_per_pixel():
    from lutfuse_ros.artifacts import load_artifact

    model = load_artifact("lutfuse-mini").build_model()
    fast = FastMini(model)
    assert fast.per_pixel and model.frame_level
    frame = random_frame(48, 64, seed=2)
    np.testing.assert_allclose(fast.infer_frame(frame), module_output(model, frame), atol=2e-6,
                               rtol=0)


def test_frame_level_term_follows_the_frame_brightness():
    # the same 3x3 neighbourhood gives another output when the rest of the frame is brighter
    model = frame_level_mini()
    dark = random_frame(40, 40, seed=1)
    visible, thermal = dark.visible.copy(), dark.thermal.copy()
    visible[:, 20:] = 250
    thermal[:, 20:] = 250
    bright = FrameInputs(visible, "bgr", thermal, luma_plane(visible, "bgr"))
    fast = FastMini(model)
    left_dark, left_bright = fast.infer_frame(dark)[:, :15], fast.infer_frame(bright)[:, :15]
    assert np.abs(left_dark - left_bright).mean() > 1e-3
    np.testing.assert_allclose(left_bright, module_output(model, bright)[:, :15], atol=2e-6)


def test_frame_level_mini_round_trips_through_an_artifact(tmp_path):
    from lutfuse_ros.artifacts import load_artifact, save_artifact

    model = frame_level_mini()
    manifest = make_manifest(model, name="level-mini", description="test", provenance={})
    assert manifest["architecture"] == {"hidden": 4, "quantise_input": True, "frame_level": True}
    path = save_artifact(model, tmp_path / "level-mini.safetensors", manifest)
    loaded = load_artifact(path).build_model()
    frame = random_frame(30, 50, seed=4)
    np.testing.assert_array_equal(module_output(loaded, frame), module_output(model, frame))
    plain = MiniFusionNet(hidden=4)   # the official architecture keeps its 113 parameters
    assert "frame_level" not in plain.architecture()
    assert sum(p.numel() for p in plain.parameters()) == 113


@pytest.mark.parametrize("workers", [1, 2])
def test_mini_bands_are_seamless(workers):
    torch.manual_seed(3)
    model = MiniFusionNet(hidden=4).eval()
    frame = random_frame(45, 20, seed=9)
    fast = FastMini(model, workers=workers)
    fast.bands.band_pixels = 8 * 20          # 8-row bands, some of 5 or 6
    assert len(fast.bands.bands(45, 20)) > 4
    np.testing.assert_allclose(fast.infer_frame(frame), module_output(model, frame),
                               atol=1e-6, rtol=0)
    fast.close()


def test_mini_runs_a_camera_frame_on_two_threads():
    torch.manual_seed(4)
    model = MiniFusionNet(hidden=4).eval()
    frame = random_frame(240, 320, seed=5)   # large enough to share out
    fast = FastMini(model, workers=2)
    assert len(fast.bands.bands(240, 320)) >= 2
    np.testing.assert_allclose(fast.infer_frame(frame), module_output(model, frame),
                               atol=1e-6, rtol=0)
    fast.close()


@needs_bf16_convolutions
@pytest.mark.parametrize("channels", [16, 8])
def test_bf16_pipeline_stays_close_to_fp32_module(channels):
    # A smooth table like trained ones (max rule plus a context ripple): >= 50 dB. With a
    # noise table the context error is amplified, but the fast path still beats autocast.
    smooth = random_mmlut(bins=16, channels=channels, blocks=3, seed=channels)
    with torch.no_grad():
        smooth.fill_analytic("max")
        smooth.lut.add_(0.2 * torch.sin(3 * torch.linspace(0, 1, 16)).view(1, 1, 16, 1))
    noisy = random_mmlut(bins=16, channels=channels, blocks=3, seed=channels)
    frame = random_frame(48, 64, seed=7)
    scores = {}
    for name, model in (("smooth", smooth), ("noisy", noisy)):
        artifact = as_artifact(model)
        reference = FusionPipeline(TorchBackend(artifact, precision="fp32", fast_path=False))
        expected = reference.fuse(frame.visible, frame.thermal)
        for path, fast_path in (("fast", True), ("autocast", False)):
            pipeline = FusionPipeline(TorchBackend(artifact, precision="bf16",
                                                   fast_path=fast_path))
            scores[name, path] = psnr(pipeline.fuse(frame.visible, frame.thermal), expected)
    assert scores["smooth", "fast"] >= 50.0, scores
    assert scores["noisy", "fast"] >= scores["noisy", "autocast"] - 1.0, scores


def test_fp32_fast_pipeline_equals_module_pipeline():
    artifact = as_artifact(random_mmlut(bins=17, channels=8, blocks=3, lattice="endpoint"))
    frame = random_frame(37, 61, seed=11)
    module = FusionPipeline(TorchBackend(artifact, precision="fp32", fast_path=False))
    fast = FusionPipeline(TorchBackend(artifact, precision="fp32"))
    difference = np.abs(fast.fuse(frame.visible, frame.thermal).astype(int)
                        - module.fuse(frame.visible, frame.thermal))
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_backend_options_select_the_path():
    artifact = as_artifact(random_mmlut(bins=5, channels=4, blocks=1))
    fast = TorchBackend(artifact, precision="fp32")
    module = TorchBackend(artifact, precision="fp32", fast_path=False)
    assert type(fast).infer_frame is not InferenceBackend.infer_frame  # reads uint8 planes
    assert fast.fast_model is not None and "fast path" in fast.describe()
    assert module.fast_model is None and "module" in module.describe()
    frame = random_frame(11, 13)
    np.testing.assert_allclose(fast.infer_frame(frame), module.infer_frame(frame), atol=2e-5)
    with pytest.raises(ConfigError, match="precision"):
        TorchBackend(artifact, precision="fp16")
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("double")


def test_auto_precision_follows_the_cpu():
    assert resolve_precision("auto", flags=frozenset()) == "fp32"
    native = torch.backends.cpu.get_cpu_capability().upper().startswith("AVX512") and \
        bf16_probe_error() is None
    expected = "bf16" if native else "fp32"
    assert resolve_precision("auto", flags=frozenset({"avx512_bf16"})) == expected
    assert resolve_precision("auto") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32", flags=frozenset({"amx_bf16"})) == "fp32"


@needs_bf16_convolutions
def test_official_checkpoint_fast_path_on_real_images(shared_dir, official_lut_artifact,
                                                      official_mini_artifact):
    import cv2

    from lutfuse_ros.artifacts import load_artifact

    folder = shared_dir / "data" / "roadscene" / "test"
    names = sorted(p.stem for p in (folder / "ir").glob("*.jpg"))[:3]
    lut = load_artifact(official_lut_artifact)
    mini = load_artifact(official_mini_artifact)
    pipelines = {
        "lut module": FusionPipeline(TorchBackend(lut, precision="fp32", fast_path=False)),
        "lut fp32": FusionPipeline(TorchBackend(lut, precision="fp32")),
        "lut bf16": FusionPipeline(TorchBackend(lut, precision="bf16")),
        "mini module": FusionPipeline(TorchBackend(mini, fast_path=False)),
        "mini fast": FusionPipeline(TorchBackend(mini)),
    }
    for name in names:
        visible = cv2.imread(str(folder / "vi" / f"{name}.jpg"))
        thermal = cv2.imread(str(folder / "ir" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        out = {key: p.fuse(visible, thermal) for key, p in pipelines.items()}
        assert psnr(out["lut fp32"], out["lut module"]) > 80, name
        assert psnr(out["lut bf16"], out["lut module"]) > 50, name
        assert psnr(out["mini fast"], out["mini module"]) > 80, name


@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_luma_plane_is_bit_identical_to_the_model_luma(order):
    frame = random_frame(29, 41, seed=4, order=order)
    expected = rgb_to_luma(torch.from_numpy(frame.visible_rgb()))[0, 0].numpy()
    assert np.array_equal(luma_plane(frame.visible, order), expected)
    assert np.array_equal(split_luma_chroma(frame.visible, order)[0], expected)


@pytest.mark.parametrize("rounding", ["round", "truncate"])
def test_replace_luma_matches_the_ycbcr_merge(rounding):
    frame = random_frame(29, 41, seed=5)
    rng = np.random.default_rng(5)
    fused = (frame.luma + rng.normal(0, 0.2, frame.luma.shape)).astype(np.float32)
    _, cb, cr = split_luma_chroma(frame.visible, "bgr")
    got = replace_luma(frame.visible, frame.luma, fused, "bgr", rounding)
    difference = np.abs(got.astype(int) - merge_luma_chroma(fused, cb, cr, "bgr", rounding))
    assert got.dtype == np.uint8 and difference.max() <= 1 and (difference > 0).mean() < 1e-3
    unchanged = replace_luma(frame.visible, frame.luma, frame.luma, "bgr", rounding)
    assert np.array_equal(unchanged, frame.visible)
    gray = replace_luma(frame.visible[..., 0], frame.luma, fused, "bgr", rounding)
    assert gray.shape == frame.visible.shape and np.array_equal(gray[..., 0], gray[..., 2])


def test_context_feature_maps_stay_channels_last():
    # oneDNN computes a planar-layout network about twice as slowly: keep channels-last.
    fast = build_fast_model(random_mmlut(bins=4, channels=8, blocks=1), "fp32")
    frame = random_frame(12, 20)
    network_input = fast.context.network.input_from_uint8(frame.visible, frame.thermal)
    assert network_input.is_contiguous(memory_format=torch.channels_last)
    from lutfuse_ros.backends.cpu_kernels.conv_ops import conv3x3_leaky_relu

    features = conv3x3_leaky_relu(network_input, fast.context.network._first_weights["bgr"],
                                  fast.context.network._first_bias, 0.2, fast.context.network.fused)
    assert features.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("channels", [16, 12, 8, 3])
@pytest.mark.parametrize("size", [(5, 7), (1, 3), (37, 61)])
def test_channel_moments_merge_packed_groups_exactly(channels, size):
    from lutfuse_ros.backends.cpu_kernels.conv_ops import channel_moments

    torch.manual_seed(channels)
    x = (torch.randn(1, channels, *size) * 2 + 3).contiguous(memory_format=torch.channels_last)
    mean, var = channel_moments(x)
    torch.testing.assert_close(mean, x.double().mean((0, 2, 3)).float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(var, x.double().var((0, 2, 3), unbiased=False).float(),
                               atol=1e-5, rtol=1e-5)


def test_unfused_convolution_fallback_gives_the_same_context():
    model = random_mmlut(bins=6, channels=8, blocks=2, seed=6)
    frame = random_frame(17, 23, seed=6)
    fast = build_fast_model(model, "fp32")
    with torch.inference_mode():
        network_input = fast.context.network.input_from_uint8(frame.visible, frame.thermal)
        fused = fast.context.network.forward(network_input, "bgr")
        fast.context.network.fused = False
        plain = fast.context.network.forward(network_input, "bgr")
    torch.testing.assert_close(plain, fused, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("centre_only", [True, False])
def test_linear_output_mini_matches_module_beyond_the_tanh_range(centre_only):
    model = frame_level_mini(seed=9)
    model.output = "linear"
    with torch.no_grad():
        model.conv2[1].bias.fill_(1.5)   # outputs beyond tanh's [-1, 1]
        if centre_only:
            for conv in (model.conv1[1], model.conv2[1]):
                centre = conv.weight[..., 1, 1].clone()
                conv.weight.zero_()
                conv.weight[..., 1, 1] = centre
    fast = FastMini(model, workers=2)
    assert fast.linear_output and fast.per_pixel == centre_only
    frame = random_frame(60, 80, seed=7)
    expected = module_output(model, frame)
    assert np.abs(expected).max() > 1.0   # no tanh
    np.testing.assert_allclose(fast.infer_frame(frame), expected, atol=1e-5, rtol=1e-6)
    fast.close()


def test_linear_output_is_recorded_and_the_analytic_start_is_the_exact_maximum(tmp_path):
    from lutfuse_ros.artifacts import load_artifact, save_artifact
    from lutfuse_ros.errors import ArtifactError
    from lutfuse_ros.families import build_model

    model = MiniFusionNet(hidden=4, frame_level=True, output="linear")
    model.fill_analytic()
    frame = random_frame(20, 30, seed=1)
    luma = np.round(frame.luma * 255.0) / 255.0
    np.testing.assert_allclose(module_output(model, frame),
                               np.maximum(frame.thermal / 255.0, luma), atol=1e-6)
    manifest = make_manifest(model, name="linear-mini", description="test", provenance={})
    assert manifest["architecture"]["output"] == "linear"
    loaded = load_artifact(save_artifact(model, tmp_path / "linear.safetensors", manifest))
    assert loaded.build_model().output == "linear"
    assert "output" not in MiniFusionNet(hidden=4).architecture()   # official: tanh, unchanged
    with pytest.raises(ArtifactError, match="output must be one of"):
        build_model("mini", {"hidden": 4, "output": "sigmoid"})

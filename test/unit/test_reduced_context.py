"""The reduced-resolution MM-LUT context (``context_reduction``).

Definition, fast path, ONNX export and artifacts, at ordinary, odd and tiny frame sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lutfuse_ros.artifacts import Artifact, load_artifact, make_manifest, save_artifact
from lutfuse_ros.backends.cpu_kernels import build_fast_model
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.colour import luma_plane
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.families import build_model
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.context_net import ContextNet
from lutfuse_ros.families.mmlut.reduced_context import (ReducedContextNet, block_average,
                                                        reduced_size)

#: (height, width): camera sizes, odd sizes, sizes not divisible by 4, smaller than 4.
SIZES = [(48, 64), (333, 501), (37, 61), (5, 3), (3, 3), (1, 1), (1, 9)]


def reduced_mmlut(reduction: int = 4, bins: int = 9, channels: int = 4, seed: int = 0) -> MMLUT:
    torch.manual_seed(seed)
    model = MMLUT(bins=bins, context_channels=channels, context_blocks=2, lattice="endpoint",
                  context_reduction=reduction)
    with torch.no_grad():
        model.lut.normal_(0.5, 0.3)
        for parameter in model.context.parameters():
            parameter.normal_(0.0, 0.3)
    return model.eval()


def frame(height: int, width: int, seed: int = 0) -> FrameInputs:
    rng = np.random.default_rng(seed)
    visible = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    thermal = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return FrameInputs(visible, "bgr", thermal, luma_plane(visible, "bgr"))


def reference(model: MMLUT, inputs: FrameInputs) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(inputs.visible_rgb()),
                     torch.from_numpy(inputs.infrared()))[0, 0].numpy()


@pytest.mark.parametrize("size", SIZES)
def test_context_has_the_frame_size_and_lies_in_the_unit_interval(size):
    model = reduced_mmlut()
    inputs = frame(*size)
    with torch.inference_mode():
        context = model.context(torch.from_numpy(inputs.visible_rgb()) * 255,
                                torch.from_numpy(inputs.infrared()) * 255)
        small = model.context.reduced(torch.from_numpy(inputs.visible_rgb()) * 255,
                                      torch.from_numpy(inputs.infrared()) * 255)
    assert context.shape == (1, 1, *size)
    assert small.shape == (1, 1, *reduced_size(*size, 4))
    assert torch.isfinite(context).all() and 0.0 <= context.min() and context.max() <= 1.0


def test_block_average_averages_partial_edge_blocks_over_their_own_pixels():
    image = torch.arange(5 * 6, dtype=torch.float32).view(1, 1, 5, 6)
    pooled = block_average(image, 4)
    assert pooled.shape == (1, 1, 2, 2)
    assert pooled[0, 0, 0, 0] == image[0, 0, :4, :4].mean()
    assert pooled[0, 0, 1, 1] == image[0, 0, 4:, 4:].mean()   # a 1x2 block


def test_instance_norm_statistics_are_those_of_the_reduced_image():
    # The reduced context is the plain network run on the block averages: a frame and the
    # frame made of its own block means (each mean repeated r x r times) give one context.
    model = reduced_mmlut(reduction=4)
    inputs = frame(32, 48, seed=3)
    visible = torch.from_numpy(inputs.visible_rgb()) * 255
    infrared = torch.from_numpy(inputs.infrared()) * 255
    stacked = torch.cat([visible, infrared], 1)
    plain = ContextNet(model.context.channels, model.context.num_mid).eval()
    state = model.context.state_dict()
    state.pop("level.weight")
    plain.load_state_dict(state)
    with torch.no_grad():
        model.context.level.weight.zero_()   # the level term alone is tested below
    with torch.inference_mode():
        small = model.context.reduced(visible, infrared)
        expected = plain(block_average(stacked, 4)[:, :3], block_average(stacked, 4)[:, 3:])
        blocky = F.interpolate(block_average(stacked, 4), scale_factor=4, mode="nearest")
        same = model.context.reduced(blocky[:, :3], blocky[:, 3:])
    torch.testing.assert_close(small, expected)
    torch.testing.assert_close(same, small, atol=1e-5, rtol=1e-5)
    # ...and the statistics are per frame: brightening another part of the frame moves
    # the context of an untouched block
    brighter = visible.clone()
    brighter[..., :, 24:] = (brighter[..., :, 24:] * 0.3 + 170).clamp(0, 255)
    with torch.inference_mode():
        moved = model.context.reduced(brighter, infrared)
    assert not torch.allclose(moved[..., :, :2], small[..., :, :2], atol=1e-4)


def test_context_value_is_upsampled_bilinearly_without_blocks():
    model = reduced_mmlut(reduction=4)
    inputs = frame(64, 64, seed=1)
    with torch.inference_mode():
        context = model.context(torch.from_numpy(inputs.visible_rgb()) * 255,
                                torch.from_numpy(inputs.infrared()) * 255)[0, 0]
        small = model.context.reduced(torch.from_numpy(inputs.visible_rgb()) * 255,
                                      torch.from_numpy(inputs.infrared()) * 255)[0, 0]
    # neighbouring full-resolution steps are bounded by the reduced grid's steps / r
    step = (context[:, 1:] - context[:, :-1]).abs().max()
    small_step = (small[:, 1:] - small[:, :-1]).abs().max()
    assert step <= small_step / 4 + 1e-6
    # half-pixel centres: with r = 3, full-resolution pixel 3k + 1 is reduced pixel k's centre
    model = reduced_mmlut(reduction=3)
    inputs = frame(63, 63, seed=1)
    with torch.inference_mode():
        context = model.context(torch.from_numpy(inputs.visible_rgb()) * 255,
                                torch.from_numpy(inputs.infrared()) * 255)[0, 0]
        small = model.context.reduced(torch.from_numpy(inputs.visible_rgb()) * 255,
                                      torch.from_numpy(inputs.infrared()) * 255)[0, 0]
    torch.testing.assert_close(context[1::3, 1::3], small, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_fast_path_matches_the_module_at_any_size(size):
    model = reduced_mmlut()
    inputs = frame(*size, seed=size[0])
    fast = build_fast_model(model, "fp32")
    want = reference(model, inputs)
    assert np.abs(fast.infer_frame(inputs) - want).max() < 2e-3
    assert np.abs(fast.infer(inputs.visible_rgb(), inputs.infrared()) - want).max() < 2e-3


def test_fast_path_handles_gray_visible_and_rgb_order():
    model = reduced_mmlut()
    colour = frame(40, 60, seed=5)
    rgb = FrameInputs(colour.visible[..., ::-1].copy(), "rgb", colour.thermal, colour.luma)
    gray_visible = colour.visible[..., 1].copy()
    gray = FrameInputs(gray_visible, "bgr", colour.thermal, luma_plane(gray_visible, "bgr"))
    fast = build_fast_model(model, "fp32")
    for inputs in (rgb, gray):
        assert np.abs(fast.infer_frame(inputs) - reference(model, inputs)).max() < 2e-3


def test_reduction_is_recorded_in_the_manifest_and_round_trips(tmp_path):
    model = reduced_mmlut(reduction=8)
    manifest = make_manifest(model, name="r8", description="test", provenance={})
    assert manifest["architecture"]["context_reduction"] == 8
    path = save_artifact(model, tmp_path / "r8.safetensors", manifest)
    loaded = load_artifact(path).build_model()
    assert isinstance(loaded.context, ReducedContextNet) and loaded.context.reduction == 8
    inputs = frame(40, 56)
    np.testing.assert_array_equal(reference(loaded, inputs), reference(model, inputs))


def test_full_resolution_models_keep_their_architecture_and_reject_bad_reductions():
    official_shape = MMLUT(bins=16)
    assert "context_reduction" not in official_shape.architecture()
    assert type(official_shape.context) is ContextNet
    assert type(build_model("mm_lut", {"bins": 4, "context_channels": 2,
                                       "context_blocks": 1}).context) is ContextNet
    with pytest.raises(ArtifactError, match="context_reduction"):
        build_model("mm_lut", {"bins": 4, "context_reduction": 0})


@pytest.mark.parametrize("lut_op", ["gather", "gridsample"])
def test_onnx_export_matches_and_passes_the_tensorrt_allow_list(lut_op):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from lutfuse_ros.export.onnx_export import export_onnx
    from lutfuse_ros.export.tensorrt_ops import tensorrt_problems

    model = reduced_mmlut()
    manifest = make_manifest(model, name="r4", description="test", provenance={})
    exported = export_onnx(Artifact(None, manifest, model.state_dict()), lut_op)
    graph = onnx.load_from_string(exported.data)
    assert tensorrt_problems(graph) == []
    assert {"AveragePool", "Resize"} <= {node.op_type for node in graph.graph.node}
    session = ort.InferenceSession(exported.data, providers=["CPUExecutionProvider"])
    names = [item.name for item in session.get_inputs()]
    for size in [(333, 501), (37, 61), (4, 4), (3, 5)]:
        inputs = frame(*size, seed=7)
        got = session.run(None, {names[0]: inputs.visible_rgb(),
                                 names[1]: inputs.infrared()})[0][0, 0]
        assert np.abs(got - reference(model, inputs)).max() < 1e-3, size


def test_level_term_lets_the_context_see_the_frame_brightness():
    # InstanceNorm removes absolute levels: with the level term off, a uniformly brightened
    # frame gets the same context; with it on, a brighter frame gets a different one.
    model = reduced_mmlut()
    inputs = frame(32, 32, seed=4)
    visible = torch.from_numpy(inputs.visible_rgb()) * 127
    infrared = torch.from_numpy(inputs.infrared()) * 127
    with torch.no_grad():
        for module in model.context.modules():   # a positive-homogeneous network
            if isinstance(module, torch.nn.Conv2d):
                module.bias.zero_()
        model.context.level.weight.zero_()
        dark, bright = (model.context.reduced(visible * k, infrared * k) for k in (1.0, 2.0))
        torch.testing.assert_close(dark, bright, atol=1e-4, rtol=0)
        model.context.level.weight.fill_(1.0)
        dark, bright = (model.context.reduced(visible * k, infrared * k) for k in (1.0, 2.0))
    assert (bright - dark).abs().min() > 1e-3

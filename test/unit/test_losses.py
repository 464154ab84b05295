"""Training losses: zero (or minimal) for identical inputs, gradients flow, known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.training.losses import (
    VGG19Features,
    attention_map,
    digestible_distillation_loss,
    feature_distance,
    gmsd,
    gradient_max_loss,
    gradient_max_target,
    intensity_max_loss,
    l1_distance,
    load_vgg19,
    lut_monotonicity,
    lut_smoothness,
    perceptual_max_loss,
    sobel_gradient_magnitude,
    ssim,
    ssim_loss,
)


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(2, 1, 32, 32, generator=generator) for _ in range(3)]


def test_intensity_max_is_zero_at_the_maximum_and_known_elsewhere(images):
    ir, vi, _ = images
    assert intensity_max_loss(torch.maximum(ir, vi), ir, vi) == 0
    ir, vi = torch.full((1, 1, 8, 8), 0.5), torch.full((1, 1, 8, 8), 0.25)
    assert intensity_max_loss(torch.zeros(1, 1, 8, 8), ir, vi).item() == pytest.approx(0.5)


def test_sobel_of_a_ramp_is_eight_times_the_slope():
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 16, 16) * 0.01
    magnitude = sobel_gradient_magnitude(ramp)
    assert torch.allclose(magnitude[..., 1:-1], torch.full_like(magnitude[..., 1:-1], 0.08),
                          atol=1e-5)
    assert sobel_gradient_magnitude(torch.full((1, 1, 8, 8), 0.3)).abs().max() < 1e-6


@pytest.mark.parametrize("target", ["max_of_gradients", "gradient_of_max"])
def test_gradient_loss_is_zero_when_the_output_carries_the_target(images, target):
    ir, _, _ = images
    flat = torch.zeros_like(ir)
    # one flat source: both targets reduce to the other source's gradient
    assert gradient_max_loss(ir, ir, flat, target) < 1e-10
    assert torch.allclose(gradient_max_target(ir, flat, target), sobel_gradient_magnitude(ir))
    assert gradient_max_loss(flat, ir, flat, target) > 0.01


def test_max_of_gradients_keeps_the_weaker_sources_edges():
    bright = torch.full((1, 1, 16, 16), 0.9)
    textured = torch.zeros(1, 1, 16, 16)
    textured[..., 8:] = 0.3  # an edge entirely below the bright source
    of_max = gradient_max_target(bright, textured, "gradient_of_max")
    max_of = gradient_max_target(bright, textured, "max_of_gradients")
    assert of_max.max() < 1e-6 < max_of.max()


def test_ssim_is_one_for_identical_images_and_matches_the_constant_formula(images):
    a, b, _ = images
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim_loss(a, a).item() == pytest.approx(0.0, abs=1e-5)
    assert ssim(a, b) < 0.5
    first, second = torch.full((1, 1, 16, 16), 0.2), torch.full((1, 1, 16, 16), 0.6)
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    assert ssim(first, second).item() == pytest.approx(expected, rel=1e-4)
    per_sample = ssim(torch.cat([a, a]), torch.cat([a, b]), per_sample=True)
    assert per_sample.shape == (4,) and per_sample[0] > 0.99 and per_sample[-1] < 0.5


def _gmsd_numpy(distorted: np.ndarray, reference: np.ndarray) -> float:
    """Independent GMSD (Xue et al.): 2x2 mean, decimate, Prewitt, std of the GMS map."""
    def magnitude(image):
        image = image * 255.0
        pooled = (image[:-1, :-1] + image[1:, :-1] + image[:-1, 1:] + image[1:, 1:]) / 4
        pooled = pooled[::2, ::2]
        gx = np.zeros((pooled.shape[0] - 2, pooled.shape[1] - 2))
        gy = np.zeros_like(gx)
        for dy in range(3):
            for dx in range(3):
                window = pooled[dy:dy + gx.shape[0], dx:dx + gx.shape[1]]
                gx += window * (1 / 3 if dx == 0 else -1 / 3 if dx == 2 else 0)
                gy += window * (1 / 3 if dy == 0 else -1 / 3 if dy == 2 else 0)
        return np.sqrt(gx ** 2 + gy ** 2)

    md, mr = magnitude(distorted), magnitude(reference)
    gms = (2 * md * mr + 170.0) / (md ** 2 + mr ** 2 + 170.0)
    return float(gms.std())


def test_gmsd_is_zero_for_identical_images_and_matches_an_independent_version(images):
    a, b, _ = images
    assert torch.all(gmsd(a, a) == 0)
    value = gmsd(a[:1], b[:1]).item()
    assert value == pytest.approx(_gmsd_numpy(a[0, 0].double().numpy(), b[0, 0].double().numpy()),
                                  rel=1e-4)
    assert value > 0.05


def test_fusion_losses_pass_gradients(images):
    ir, vi, out = images
    out = out.clone().requires_grad_(True)
    total = (intensity_max_loss(out, ir, vi) + gradient_max_loss(out, ir, vi)
             + ssim_loss(out, vi) + gmsd(out, ir).mean() + l1_distance(out, vi))
    total.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0 and torch.isfinite(out.grad).all()


def test_gmsd_gradient_is_finite_at_identity(images):
    a, _, _ = images
    out = a.clone().requires_grad_(True)
    gmsd(out, a).sum().backward()
    assert torch.isfinite(out.grad).all()


# ------------------------------------------------------------------ digestible distillation
def test_attention_maps_are_unit_norm_channel_sums():
    features = torch.rand(3, 4, 8, 8)
    maps = attention_map(features)
    assert maps.shape == (3, 64)
    assert torch.allclose(maps.norm(dim=1), torch.ones(3))
    assert torch.allclose(maps[0], features[0].sum(0).flatten() / features[0].sum(0).norm())


def test_distillation_is_zero_for_matching_maps_and_scale_invariant():
    student = [torch.rand(2, 4, 8, 8), torch.rand(2, 1, 8, 8)]
    scaled_teacher = [3.0 * student[0], 0.5 * student[1]]
    loss = digestible_distillation_loss(student, scaled_teacher)
    assert loss.item() == pytest.approx(0, abs=1e-5)


def test_distillation_known_value_for_orthogonal_maps():
    first = torch.zeros(1, 1, 2, 2)
    first[0, 0, 0, 0] = 1.0
    second = torch.zeros(1, 1, 2, 2)
    second[0, 0, 1, 1] = 2.0
    # ||e1 - e4|| = sqrt(2); one aligned pair; times 1/2
    assert digestible_distillation_loss([first], [second]).item() == pytest.approx(
        math.sqrt(2) / 2, rel=1e-5)


def test_distillation_passes_gradients_to_the_student_only():
    student = torch.rand(2, 4, 8, 8, requires_grad=True)
    teacher = torch.rand(2, 4, 8, 8, requires_grad=True)
    digestible_distillation_loss([student], [teacher]).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None


# ------------------------------------------------------------------ LUT regularisers
def test_lut_regularisers_vanish_for_a_constant_table():
    table = torch.full((5, 5, 5, 5), 0.3)
    assert lut_smoothness(table) == 0 and lut_monotonicity(table) == 0


def test_lut_regularisers_known_values():
    bins, step = 6, 0.1
    increasing = (torch.arange(bins, dtype=torch.float32) * step).view(-1, 1, 1, 1).expand(
        bins, bins, bins, bins).contiguous()
    assert lut_monotonicity(increasing) == 0
    # one axis varies: every difference is `step`, the two end differences count double
    expected = step ** 2 * (bins - 1 + 2) / (bins - 1)
    assert lut_smoothness(increasing).item() == pytest.approx(expected, rel=1e-5)
    decreasing = increasing.flip(0)
    assert lut_monotonicity(decreasing).item() == pytest.approx(step, rel=1e-5)
    assert lut_monotonicity(decreasing, axes=(1, 2, 3)) == 0


def test_lut_regularisers_pass_gradients():
    table = torch.rand(4, 4, 4, 4, requires_grad=True)
    (lut_smoothness(table) + lut_monotonicity(table)).backward()
    assert table.grad.abs().sum() > 0


# ------------------------------------------------------------------ perceptual (VGG-19)
@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    torch.manual_seed(0)
    model = VGG19Features()
    path = tmp_path_factory.mktemp("vgg") / "vgg19_random.pth"
    state = dict(model.state_dict())
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full vgg19 are ignored
    torch.save(state, path)
    return path


def test_perceptual_loss_with_user_weights(vgg_file):
    vgg = load_vgg19(vgg_file)
    image = torch.rand(1, 1, 32, 32)
    features = vgg(image)
    assert [f.shape[1] for f in features] == [64, 128, 256, 512, 512]
    assert features[0].shape[-1] == 32 and features[-1].shape[-1] == 32 // 16
    assert perceptual_max_loss(features, features, features).item() == 0
    other = torch.rand(1, 1, 32, 32)
    output = torch.rand(1, 1, 32, 32, requires_grad=True)
    loss = perceptual_max_loss(vgg(output), vgg(image), vgg(other))
    loss.backward()
    assert loss > 0 and output.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in vgg.parameters())
    distance = feature_distance(vgg(image), vgg(image), (4, 5))
    assert distance.shape == (1,) and distance.item() == 0


def test_perceptual_weights_missing_or_wrong_raise_clear_errors(tmp_path, vgg_file):
    with pytest.raises(ConfigError, match="cannot be downloaded"):
        load_vgg19(None)
    with pytest.raises(ConfigError, match="not found"):
        load_vgg19(tmp_path / "absent.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="weights-only state dict"):
        load_vgg19(corrupt)
    partial = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, partial)
    with pytest.raises(ConfigError, match="lack"):
        load_vgg19(partial)
    wrong = tmp_path / "wrong.pth"
    state = torch.load(vgg_file, weights_only=True)
    state["features.0.weight"] = torch.zeros(8, 3, 3, 3)
    torch.save(state, wrong)
    with pytest.raises(ConfigError, match="do not fit"):
        load_vgg19(wrong)

"""The classical teacher (``teacher.kind: classical``) and ``lut.init: teacher_rule``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.metrics import correlation_coefficient, sum_of_correlations_of_differences
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.training.classical_teacher import ClassicalTeacher, sum_max_blend
from lutfuse_ros.training.config import TeacherSourceConfig
from lutfuse_ros.training.losses import lut_monotonicity
from lutfuse_ros.training.rule_init import fill_from_rule
from lutfuse_ros.training.teacher import build_teacher


def smooth_pair(seed: int = 0, size: int = 96, brightness: float = 0.4):
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 4, size // 8, size // 8, generator=generator)
    image = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear")
    return (image[:, :3] * brightness).clamp(0, 1), (image[:, 3:] * brightness * 1.5).clamp(0, 1)


def test_rule_keeps_the_average_brightness_and_adds_the_sources_detail():
    visible, infrared = smooth_pair()
    teacher = ClassicalTeacher(max_weight=0.0, sum_gain=1.0)
    fused = teacher.run(visible, infrared)[1]   # unclamped
    luma = (0.299 * visible[:, 0] + 0.587 * visible[:, 1] + 0.114 * visible[:, 2])[:, None]
    torch.testing.assert_close(fused.mean(), (0.5 * (luma + infrared)).mean(), atol=2e-3, rtol=0)
    # gain 1 on the sum: fused - visible is the infrared up to a constant (SCD's ideal)
    difference = (fused - luma).flatten()
    assert torch.corrcoef(torch.stack([difference, infrared.flatten()]))[0, 1] > 0.999


def test_rule_beats_both_baselines_on_scd_and_the_maximum_on_cc():
    visible, infrared = smooth_pair(seed=2)
    luma = (0.299 * visible[:, 0] + 0.587 * visible[:, 1] + 0.114 * visible[:, 2])[:, None]
    as_gray = lambda x: (x[0, 0].numpy() * 255).round().astype(np.float32)   # noqa: E731
    ir, vi = as_gray(infrared), as_gray(luma)
    fused = as_gray(ClassicalTeacher().fuse_luma(visible, infrared))
    scd = sum_of_correlations_of_differences(fused, ir, vi)
    assert scd > sum_of_correlations_of_differences((ir + vi) / 2, ir, vi)
    assert scd > sum_of_correlations_of_differences(np.maximum(ir, vi), ir, vi)
    assert correlation_coefficient(fused, ir, vi) > correlation_coefficient(
        np.maximum(ir, vi), ir, vi)


def test_build_teacher_makes_a_classical_teacher_without_a_file():
    teacher = build_teacher(TeacherSourceConfig(kind="classical", max_weight=0.3))
    info = teacher.describe()
    assert info["kind"] == "classical" and info["max_weight"] == 0.3
    assert info["sha256"] != ClassicalTeacher().describe()["sha256"]   # own cache folder
    with pytest.raises(ValueError, match="unknown classical rule"):
        ClassicalTeacher(rule="median")


@pytest.mark.parametrize("brightness", [0.2, 0.45, 0.65])
def test_teacher_rule_init_reproduces_the_rule_at_any_frame_brightness(brightness):
    torch.manual_seed(0)
    model = MMLUT(bins=17, context_channels=4, context_blocks=1, lattice="endpoint",
                  context_reduction=4)
    teacher = ClassicalTeacher()
    fill_from_rule(model, teacher)
    assert lut_monotonicity(model.lut) == 0   # rises along every axis
    visible, infrared = smooth_pair(seed=3, brightness=brightness)
    with torch.no_grad():
        error = (model.eval()(visible, infrared).clamp(0, 1)
                 - teacher.fuse_luma(visible, infrared)).abs()
    assert error.mean() < 0.01 and error.max() < 0.06


def test_teacher_rule_init_needs_a_classical_teacher_and_a_reduced_context():
    with pytest.raises(ConfigError, match="classical"):
        fill_from_rule(MMLUT(bins=5, context_reduction=4), object())
    with pytest.raises(ConfigError, match="context_reduction"):
        fill_from_rule(MMLUT(bins=5), ClassicalTeacher())


def test_sum_max_blend_takes_a_given_frame_mean():
    luma, infrared = torch.full((1, 1, 2, 2), 0.25), torch.full((1, 1, 2, 2), 0.5)
    out = sum_max_blend(luma, infrared, 0.0, 1.0, torch.tensor(1.0))
    torch.testing.assert_close(out, torch.full_like(out, 0.75 - 1.0 + 0.5))


def test_lut_stage_trains_a_reduced_context_mmlut_from_the_classical_rule(tmp_path):
    """`lutfuse train lut` end to end with the shipped recipe's kind of config."""
    from test_training import make_config, write_scenes
    from lutfuse_ros.artifacts import load_artifact
    from lutfuse_ros.pipeline import FusionPipeline
    from lutfuse_ros.training.engine import train

    scenes = write_scenes(tmp_path / "scenes", size=(48, 64))
    config = make_config(tmp_path, "lut", """
train: {epochs: 2, batch_size: 4, lr: 1.0e-3, log_every: 1}
teacher: {kind: classical, max_weight: 0.5, sum_gain: 1.0}
lut: {bins: 9, context_channels: 2, context_blocks: 1, context_reduction: 4,
      init: teacher_rule, ssim_weight: 0.0}
""")
    result = train(config, progress=False)
    artifact = load_artifact(result.artifact)
    manifest = artifact.manifest
    assert manifest["architecture"]["context_reduction"] == 4
    assert manifest["provenance"]["teacher"]["kind"] == "classical"
    assert manifest["provenance"]["init"] == "teacher_rule"
    assert "4x4 block averages" in manifest["description"]
    visible = cv2.imread(str(scenes / "vi" / "s0.png"))
    thermal = cv2.imread(str(scenes / "ir" / "s0.png"), 0)
    fused = FusionPipeline.from_artifact(artifact).fuse(visible, thermal)
    # the trained model still computes the rule closely (it started there)
    teacher = ClassicalTeacher(max_weight=0.5, sum_gain=1.0)
    rgb = torch.from_numpy(visible[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    infrared = torch.from_numpy(thermal)[None, None].float() / 255
    expected = teacher.fuse_luma(rgb, infrared)[0, 0].numpy() * 255
    fused_luma = cv2.cvtColor(fused, cv2.COLOR_BGR2YCrCb)[..., 0].astype(np.float64)
    assert np.mean(np.abs(fused_luma - expected)) < 8

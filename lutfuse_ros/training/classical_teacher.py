"""A classical (non-network) fusion rule used as a distillation teacher.

``sum_max_blend`` (the package's own rule, chosen for the field's metrics; see
docs/training.md): with ``Y`` the visible luminance, ``I`` the infrared (both on [0, 1]),
``S = Y + I`` and ``m`` the frame mean of ``S``,

    T = w * max(Y, I) + (1 - w) * (g * (S - m) + m / 2)

clamped to [0, 1]. The sum term adds the two sources' detail at gain ``g`` around the mean of
their average (keeping the average's overall brightness): its difference with either source
correlates with the other source, which the SCD and CC metrics reward; the maximum term keeps
the brighter source's local contrast (MI, VIF, Qabf). Defaults ``w = 0.2, g = 0.8``.
"""

from __future__ import annotations

import hashlib
import json

import torch

from lutfuse_ros.families.features import rgb_to_luma
from lutfuse_ros.training.teacher import Teacher

#: Rules this module computes.
CLASSICAL_RULES = ("sum_max_blend",)


def sum_max_blend(luma: torch.Tensor, infrared: torch.Tensor, max_weight: float,
                  sum_gain: float, frame_mean: torch.Tensor | None = None) -> torch.Tensor:
    """The ``sum_max_blend`` rule, unclamped.

    Args:
        luma: ``(N, 1, H, W)`` visible luminance on [0, 1].
        infrared: ``(N, 1, H, W)`` on [0, 1].
        max_weight: ``w``.
        sum_gain: ``g``.
        frame_mean: ``(N, 1, 1, 1)`` mean of ``luma + infrared``; None computes it from the
            inputs (broadcastable tensors of any other shape also work).

    Returns:
        ``(N, 1, H, W)``.
    """
    total = luma + infrared
    if frame_mean is None:
        frame_mean = total.mean(dim=(2, 3), keepdim=True)
    blend = sum_gain * (total - frame_mean) + 0.5 * frame_mean
    return max_weight * torch.maximum(luma, infrared) + (1.0 - max_weight) * blend


class ClassicalTeacher(Teacher):
    """A fusion rule computed in closed form on each full frame (no weights, no file).

    Args:
        rule: one of :data:`CLASSICAL_RULES`.
        max_weight: weight ``w`` of the per-pixel maximum.
        sum_gain: gain ``g`` of the sum term.
    """

    def __init__(self, rule: str = "sum_max_blend", max_weight: float = 0.2,
                 sum_gain: float = 0.8) -> None:
        if rule not in CLASSICAL_RULES:
            raise ValueError(f"unknown classical rule {rule!r}; known: {CLASSICAL_RULES}")
        self.rule = rule
        self.max_weight = float(max_weight)
        self.sum_gain = float(sum_gain)

    def run(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
            ) -> tuple[None, torch.Tensor]:
        """No features; the rule's ``(N, 1, H, W)`` output (unclamped)."""
        return None, sum_max_blend(rgb_to_luma(visible_rgb), infrared, self.max_weight,
                                   self.sum_gain)

    def describe(self) -> dict:
        """Rule and parameters; ``sha256`` names the cache folder of its outputs."""
        info = {"kind": "classical", "rule": self.rule, "max_weight": self.max_weight,
                "sum_gain": self.sum_gain,
                "formula": "w*max(Y,I) + (1-w)*(g*(Y+I-m) + m/2), m = frame mean of Y+I"}
        digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
        return {**info, "sha256": "sha256:" + digest}

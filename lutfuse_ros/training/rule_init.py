"""Start an MM-LUT from a classical teacher's rule (``lut.init: teacher_rule``).

The reduced-resolution context's level term is set so that the context value is a sigmoid of
the frame mean ``m`` of ``Y + I`` (``logit = alpha * (1 - m)``: darker frames get larger
contexts, so the rule's table rises along every axis and the official monotonicity
regulariser holds for it), its convolutional part is
scaled down to a small perturbation that training can grow, and every table cell
``(luma, gradient, context, infrared)`` holds the rule at ``(luma, infrared)`` for the frame
mean that context value stands for. Before any gradient step the MM-LUT then computes the
rule itself up to the lattice interpolation, so distillation starts from the teacher.
"""

from __future__ import annotations

import math

import torch

from lutfuse_ros.colour import LUMA_WEIGHTS_RGB
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.reduced_context import ReducedContextNet
from lutfuse_ros.training.classical_teacher import ClassicalTeacher, sum_max_blend

#: Logit per unit of the frame mean of ``Y + I`` (which lies in [0, 2]).
LEVEL_SLOPE = 3.0
#: Factor on the context network's output convolution at the start.
NETWORK_START_SCALE = 0.05


@torch.no_grad()
def fill_from_rule(model: MMLUT, teacher: object) -> None:
    """Write ``teacher``'s rule into ``model`` (table and context level term), in place.

    Raises:
        ConfigError: the teacher is not a classical rule or the context is not reduced.
    """
    if not isinstance(teacher, ClassicalTeacher):
        raise ConfigError("lut.init teacher_rule needs teacher.kind: classical")
    context = model.context
    if not isinstance(context, ReducedContextNet):
        raise ConfigError("lut.init teacher_rule needs lut.context_reduction >= 2 (its "
                          "context has the frame-level term that carries the frame mean)")
    out_conv = context.output_layer[1]
    out_conv.weight.mul_(NETWORK_START_SCALE)
    out_conv.bias.fill_(LEVEL_SLOPE)
    context.level.weight.copy_(-LEVEL_SLOPE * torch.tensor([[*LUMA_WEIGHTS_RGB, 1.0]]))
    bins, scale = model.bins, model.scale
    levels = torch.arange(bins, dtype=torch.float64) / scale            # lattice -> [0, 1]
    context_values = levels.clamp(1e-3, 1.0 - 1e-3)
    frame_means = (1.0 - torch.log(context_values / (1.0 - context_values))
                   / LEVEL_SLOPE).clamp(0.0, 2.0)
    luma = levels.view(-1, 1, 1, 1)
    infrared = levels.view(1, 1, 1, -1)
    table = sum_max_blend(luma, infrared, teacher.max_weight, teacher.sum_gain,
                          frame_means.view(1, 1, -1, 1)).clamp(0.0, 1.0)
    model.lut.copy_(table.expand(bins, bins, bins, bins).float())
    assert math.isfinite(float(model.lut.sum()))

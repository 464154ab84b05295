"""Training losses of both papers.

* :mod:`.fusion`: MMDRFuse intensity-max and gradient-max terms.
* :mod:`.ssim_gmsd`: differentiable SSIM and GMSD.
* :mod:`.perceptual`: VGG-19 features (user-supplied weights) and perceptual losses.
* :mod:`.distill`: digestible distillation (attention maps).
* :mod:`.lut_regularisers`: LUT smoothness and monotonicity.
"""

from lutfuse_ros.training.losses.distill import attention_map, digestible_distillation_loss
from lutfuse_ros.training.losses.fusion import (
    gradient_difference,
    gradient_max_loss,
    gradient_max_target,
    intensity_max_loss,
    l1_distance,
    sobel_gradient_magnitude,
)
from lutfuse_ros.training.losses.lut_regularisers import lut_monotonicity, lut_smoothness
from lutfuse_ros.training.losses.perceptual import (
    VGG19Features,
    feature_distance,
    load_vgg19,
    perceptual_max_loss,
)
from lutfuse_ros.training.losses.ssim_gmsd import gmsd, ssim, ssim_loss, ssim_map

__all__ = [
    "VGG19Features",
    "attention_map",
    "digestible_distillation_loss",
    "feature_distance",
    "gmsd",
    "gradient_difference",
    "gradient_max_loss",
    "gradient_max_target",
    "intensity_max_loss",
    "l1_distance",
    "load_vgg19",
    "lut_monotonicity",
    "lut_smoothness",
    "perceptual_max_loss",
    "sobel_gradient_magnitude",
    "ssim",
    "ssim_loss",
    "ssim_map",
]

"""Fast inference of the MM-LUT context network (:class:`~.context_net.ContextNet`).

The same function as the module, computed differently:

* channels-last feature maps, bf16 or fp32 storage, oneDNN convolutions with the LeakyReLU
  fused in;
* each InstanceNorm is never applied to its feature map: its per-frame ``scale, shift`` is
  folded into the next convolution's weights and bias (exact, border repaired by
  :func:`~.conv_ops.correct_border`), which saves a full read and write of the map per layer;
* the residual sum and the final 16 -> 1 convolution become two small GEMMs plus nine
  shifted plane additions (:func:`~.conv_ops.conv3x3_to_single_channel`);
* the network reads the uint8 images directly (0..255 is what it was trained on), with the
  visible channel order folded into the first layer's weights.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from lutfuse_ros.backends.cpu_kernels.conv_ops import (BorderPlan, conv3x3_leaky_relu,
                                                       conv3x3_to_single_channel,
                                                       correct_border, fold_affine,
                                                       fused_conv_available,
                                                       instance_norm_affine)
from lutfuse_ros.families.mmlut.context_net import ContextNet

#: Visible channel order -> the RGB index of each input channel.
_ORDER_TO_RGB = {"rgb": (0, 1, 2), "bgr": (2, 1, 0)}
#: Frame sizes whose border plans are kept.
_PLAN_CACHE_SIZE = 4


class FastContextNet:
    """The context network of one MM-LUT, prepared for fast CPU inference.

    Args:
        network: the reference module (weights are copied; it is not kept).
        dtype: ``torch.float32`` or ``torch.bfloat16`` storage of weights and feature maps.
    """

    def __init__(self, network: ContextNet, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.fused = fused_conv_available()
        first_conv, first_act, first_norm = network.input_layer
        self.slope = float(first_act.negative_slope)
        weight = first_conv.weight.detach().float()
        self._first_weights = {order: _conv_weight(weight[:, list(rgb) + [3]], dtype)
                               for order, rgb in _ORDER_TO_RGB.items()}
        self._first_weights["gray"] = _conv_weight(
            torch.stack([weight[:, :3].sum(1), weight[:, 3]], 1), dtype)
        self._first_bias = first_conv.bias.detach().float()
        self._norms = [self._norm_params(first_norm)]
        self._mid = []
        layers = list(network.mid_layer)
        for start in range(0, len(layers), 3):
            conv, act, norm = layers[start:start + 3]
            if float(act.negative_slope) != self.slope:
                raise ValueError("all context-network activations must share one slope")
            self._mid.append((conv.weight.detach().float(), conv.bias.detach().float()))
            self._norms.append(self._norm_params(norm))
        out_conv = network.output_layer[1]
        self._out_weight = out_conv.weight.detach().float()[0]
        self._out_bias = float(out_conv.bias.detach()[0])
        self._plans: dict[tuple[int, int], BorderPlan] = {}

    @staticmethod
    def _norm_params(norm: torch.nn.InstanceNorm2d) -> tuple[torch.Tensor, torch.Tensor, float]:
        channels = norm.num_features
        gamma = norm.weight.detach().float() if norm.affine else torch.ones(channels)
        beta = norm.bias.detach().float() if norm.affine else torch.zeros(channels)
        return gamma, beta, float(norm.eps)

    def input_from_uint8(self, visible: np.ndarray, thermal: np.ndarray) -> torch.Tensor:
        """``(1, Cin, H, W)`` channels-last network input from uint8 images.

        Args:
            visible: ``(H, W, 3)`` uint8 (any channel order, see :meth:`forward`) or
                ``(H, W)`` gray.
            thermal: ``(H, W)`` uint8.
        """
        planes = [visible] if visible.ndim == 2 else list(cv2.split(visible))
        stacked = cv2.merge(planes + [thermal])  # 8x faster than np.concatenate here
        # (1, H, W, C) -> (1, C, H, W) view: channels-last strides PyTorch recognises (a
        # permuted (H, W, C) array with a bare batch axis would be taken for NCHW, and
        # oneDNN would then compute every layer in the slower planar layout)
        return torch.from_numpy(stacked[None]).to(self.dtype).permute(0, 3, 1, 2)

    def input_from_float(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
                         ) -> torch.Tensor:
        """The ``(1, 4, H, W)`` channels-last input of the context network.

        Built from ``(1, 3, H, W)`` RGB and ``(1, 1, H, W)`` infrared on [0, 1], scaled to
        0..255 as the module does.
        """
        stacked = torch.cat([visible_rgb, infrared], dim=1) * 255.0
        return stacked.to(self.dtype).contiguous(memory_format=torch.channels_last)

    def forward(self, network_input: torch.Tensor, order: str = "rgb") -> torch.Tensor:
        """Context map of one frame.

        Args:
            network_input: from :meth:`input_from_uint8` or :meth:`input_from_float`.
            order: ``rgb`` or ``bgr`` (the visible channels of the input) or ``gray`` (a
                two-channel gray + infrared input).

        Returns:
            ``(H, W)`` float32 pre-sigmoid context logits (apply ``sigmoid`` for [0, 1]).
        """
        height, width = network_input.shape[2:]
        plan = self._plan(height, width)
        first = conv3x3_leaky_relu(network_input, self._first_weights[order],
                                   self._first_bias, self.slope, self.fused)
        first_scale, first_shift = instance_norm_affine(first, *self._norms[0])
        features, scale, shift = first, first_scale, first_shift
        for (weight, bias), norm in zip(self._mid, self._norms[1:]):
            folded = fold_affine(weight, bias, scale, shift, self.dtype)
            features = conv3x3_leaky_relu(features, folded.weight, folded.bias, self.slope,
                                          self.fused)
            correct_border(features, plan, folded.tap_shift, self.slope)
            scale, shift = instance_norm_affine(features, *norm)
        if not self._mid:
            terms = [(first, first_scale * 2.0)]
        else:
            terms = [(first, first_scale), (features, scale)]
        return conv3x3_to_single_channel(terms, self._out_weight, first_shift + shift,
                                         self._out_bias, plan)

    def _plan(self, height: int, width: int) -> BorderPlan:
        key = (height, width)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.pop(next(iter(self._plans)))
            plan = self._plans[key] = BorderPlan(height, width)
        return plan


def _conv_weight(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A conv weight in ``dtype`` and channels-last memory (keeps oneDNN in that layout)."""
    return weight.to(dtype).contiguous(memory_format=torch.channels_last)

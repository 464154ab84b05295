"""Convolution building blocks of the fast CPU path (PyTorch eager, oneDNN underneath).

All feature maps here are ``(1, C, H, W)`` tensors in channels-last memory (an ``(H, W, C)``
array underneath), float32 or bfloat16. Per-channel affine maps (the InstanceNorm of the
MM-LUT context network) are *folded* into the convolution that follows them instead of being
applied to the feature map; :class:`BorderPlan` repairs the one-pixel border, where zero
padding makes the folded bias differ from the original (see :func:`fold_affine`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


#: Row width (channels) at which the channels-last statistics kernel runs fastest: about
#: twice as fast as at 16 (measured 1.2 vs 2.3 ms for a 640x480 16-channel bf16 map).
_STATS_WIDTH = 64


def fused_conv_available() -> bool:
    """Whether oneDNN's fused convolution + activation operator exists in this PyTorch."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                            "_convolution_pointwise")


def conv3x3_leaky_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: float,
                       fused: bool) -> torch.Tensor:
    """``leaky_relu(conv2d(x, weight, bias, padding=1), slope)``.

    Args:
        x: ``(1, Cin, H, W)`` channels-last, float32 or bfloat16.
        weight: ``(Cout, Cin, 3, 3)`` in ``x``'s dtype.
        bias: ``(Cout,)`` float32 (kept in float32 even for bf16 inputs: a folded bias can be
            large, and rounding it to bf16 would cost precision).
        slope: negative slope.
        fused: use oneDNN's fused operator (one pass) rather than conv then activation.

    Returns:
        ``(1, Cout, H, W)`` channels-last in ``x``'s dtype.
    """
    if fused:
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "leaky_relu", [slope], "")
    out = F.conv2d(x, weight, bias.to(x.dtype), padding=1)
    return F.leaky_relu_(out, slope)


def channel_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance over H x W, as float32.

    Uses PyTorch's channels-last batch-norm statistics kernel (float32 accumulation; for
    bf16 input it rounds its two results to bf16). That kernel is fastest on wide rows, so
    the map is read as ``lcm(C, 64) / C`` pixels per row of a wider matrix (a free view of
    the channels-last memory) and the per-group moments are merged exactly.

    Args:
        x: ``(1, C, H, W)`` channels-last.

    Returns:
        ``(mean, var)``, each ``(C,)`` float32.
    """
    channels = x.shape[1]
    pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)
    width = math.lcm(channels, _STATS_WIDTH)
    group = width // channels
    whole = pixels.shape[0] // group * group
    if group == 1 or whole == 0:
        mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
        return mean.float(), var.float()
    rows = pixels[:whole].reshape(-1, width)               # free view: C-major memory
    packed = rows.t()[None, :, :, None]                    # (1, width, rows, 1) channels-last
    mean, var = torch.batch_norm_update_stats(packed, None, None, 0.0)
    counts = torch.full((group,), float(whole // group))
    means, variances = mean.float().view(group, channels), var.float().view(group, channels)
    rest = pixels[whole:].float()
    if rest.shape[0]:
        counts = torch.cat([counts, torch.tensor([float(rest.shape[0])])])
        means = torch.cat([means, rest.mean(0, keepdim=True)])
        variances = torch.cat([variances, rest.var(0, unbiased=False, keepdim=True)])
    return _merge_moments(counts, means, variances)


def _merge_moments(counts: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the union of groups: ``(G,)`` counts, ``(G, C)`` moments."""
    weights = (counts / counts.sum()).view(-1, 1)
    mean = (weights * means).sum(0)
    return mean, (weights * (variances + (means - mean) ** 2)).sum(0)


def instance_norm_affine(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                         eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``scale, shift`` with ``InstanceNorm(x) == scale * x + shift``.

    Args:
        x: ``(1, C, H, W)`` channels-last feature map.
        gamma: ``(C,)`` float32 affine weight.
        beta: ``(C,)`` float32 affine bias.
        eps: the norm's epsilon.

    Returns:
        ``(scale, shift)``, each ``(C,)`` float32.
    """
    mean, var = channel_moments(x)
    scale = gamma * torch.rsqrt(var + eps)
    return scale, beta - mean * scale


@dataclass(frozen=True)
class FoldedConv:
    """A 3x3 convolution with the previous layer's per-channel affine folded in.

    ``conv(scale * x + shift)`` with zero padding equals ``conv_{W * scale}(x) + bias +
    sum_taps W . shift`` everywhere except on the one-pixel border, where the taps that fall
    into the padding must not contribute ``W . shift``: ``tap_shift`` holds those per-tap
    contributions for :func:`correct_border`.

    Attributes:
        weight: ``(Cout, Cin, 3, 3)`` folded weight in the compute dtype.
        bias: ``(Cout,)`` float32 folded bias (interior value).
        tap_shift: ``(9, Cout)`` float32 contribution of each tap's shift, taps row-major.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    tap_shift: torch.Tensor


def fold_affine(weight: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor,
                shift: torch.Tensor, dtype: torch.dtype) -> FoldedConv:
    """Fold ``x -> scale * x + shift`` (per input channel) into a following 3x3 conv.

    Args:
        weight: ``(Cout, Cin, 3, 3)`` float32.
        bias: ``(Cout,)`` float32.
        scale: ``(Cin,)`` float32.
        shift: ``(Cin,)`` float32.
        dtype: compute dtype of the folded weight.
    """
    tap_shift = (weight * shift.view(1, -1, 1, 1)).sum(1).permute(1, 2, 0).reshape(9, -1)
    folded = (weight * scale.view(1, -1, 1, 1)).to(dtype).contiguous(
        memory_format=torch.channels_last)
    return FoldedConv(folded, bias + tap_shift.sum(0), tap_shift)


class BorderPlan:
    """The border pixels of an ``H x W`` frame and which 3x3 taps fall outside it.

    Args:
        height: frame height H >= 1.
        width: frame width W >= 1.

    Attributes:
        rows: ``(Nb,)`` int64 row of each border pixel.
        cols: ``(Nb,)`` int64 column of each border pixel.
        index: ``(Nb,)`` int64 flat indices ``y * W + x`` of the border pixels.
        outside: ``(Nb, 9)`` float32, 1 where tap ``(ky, kx)`` (row-major) of that pixel
            reads the zero padding.
    """

    def __init__(self, height: int, width: int) -> None:
        ys = torch.arange(height).view(-1, 1).expand(height, width)
        xs = torch.arange(width).view(1, -1).expand(height, width)
        on_border = (ys == 0) | (ys == height - 1) | (xs == 0) | (xs == width - 1)
        by, bx = ys[on_border], xs[on_border]
        self.rows, self.cols = by, bx
        self.index = by * width + bx
        offsets = torch.arange(3) - 1
        row_out = ((by.view(-1, 1) + offsets) < 0) | ((by.view(-1, 1) + offsets) >= height)
        col_out = ((bx.view(-1, 1) + offsets) < 0) | ((bx.view(-1, 1) + offsets) >= width)
        self.outside = (row_out[:, :, None] | col_out[:, None, :]).reshape(-1, 9).float()


def correct_border(activated: torch.Tensor, plan: BorderPlan, tap_shift: torch.Tensor,
                   slope: float) -> None:
    """Remove the padding taps' folded shift from the border pixels, in place.

    ``activated`` holds ``leaky_relu(z, slope)`` with ``z`` computed with a folded bias;
    the border pixels are mapped back to ``z`` (the activation is invertible for
    ``slope > 0``), corrected and activated again.

    Args:
        activated: ``(1, C, H, W)`` channels-last, modified in place.
        plan: the frame's :class:`BorderPlan`.
        tap_shift: ``(9, C)`` float32 from :class:`FoldedConv`.
        slope: the leaky ReLU's negative slope (> 0).
    """
    channels = activated.shape[1]
    pixels = activated.permute(0, 2, 3, 1).reshape(-1, channels)
    values = pixels.index_select(0, plan.index).float()
    pre = torch.where(values > 0, values, values * (1.0 / slope))
    pre -= plan.outside @ tap_shift
    pixels.index_copy_(0, plan.index, F.leaky_relu(pre, slope).to(activated.dtype))


def conv3x3_to_single_channel(terms: list[tuple[torch.Tensor, torch.Tensor]],
                              weight: torch.Tensor, shift: torch.Tensor, bias: float,
                              plan: BorderPlan) -> torch.Tensor:
    """``conv2d(sum_k scale_k * x_k + shift, weight, bias, padding=1)`` for one output channel.

    oneDNN pads a single output channel to a full vector of channels (as slow as 16); this
    computes the nine taps' channel sums as one GEMM per term, ``(H*W, C) @ (C, 9)``, then
    adds the nine shifted planes in float32. The shift contributes ``weight . shift`` per
    in-bounds tap: everywhere in the interior, less the padding taps on the border (``plan``).

    Args:
        terms: ``(x, scale)`` pairs, ``x`` ``(1, C, H, W)`` channels-last (all one dtype),
            ``scale`` ``(C,)`` float32.
        weight: ``(C, 3, 3)`` float32 kernel of the single output channel.
        shift: ``(C,)`` float32 shift added to the input (after the scaled sum).
        bias: the output bias.
        plan: the frame's :class:`BorderPlan`.

    Returns:
        ``(H, W)`` float32 pre-activation.
    """
    first = terms[0][0]
    channels, height, width = first.shape[1:]
    dtype = first.dtype
    tap_weight = weight.reshape(channels, 9)
    taps = None
    for x, scale in terms:
        # (H*W, C) @ (C, 9) is about twice as fast as the transposed product, and an
        # in-place bf16 addmm_ takes a slow path: a separate GEMM and add is 5x faster
        product = x.permute(0, 2, 3, 1).reshape(-1, channels) @ (
            tap_weight * scale.view(-1, 1)).to(dtype)
        taps = product if taps is None else taps.add_(product)
    planes = taps.view(height, width, 9).permute(2, 0, 1)   # (9, H, W) strided views
    padded = torch.empty(height + 2, width + 2)
    padded[1:-1, 1:-1] = planes[4]
    padded[0].zero_()
    padded[-1].zero_()
    padded[1:-1, 0].zero_()
    padded[1:-1, -1].zero_()
    for tap in (0, 1, 2, 3, 5, 6, 7, 8):
        ky, kx = divmod(tap, 3)
        padded[2 - ky:2 - ky + height, 2 - kx:2 - kx + width] += planes[tap]
    tap_shift = shift @ tap_weight                      # (9,) per-tap shift contribution
    padded[plan.rows + 1, plan.cols + 1] -= plan.outside @ tap_shift
    return padded[1:-1, 1:-1].add_(bias + float(tap_shift.sum()))

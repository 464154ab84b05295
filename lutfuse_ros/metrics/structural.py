"""Structure-based fusion metrics: SSIM, VIF (pixel-domain VIFP) and Qabf.

Conventions follow the field's reference evaluators (the CDDFuse / MMDRFuse ``Evaluator``),
with the fused image first in every public function: ``metric(fused, ir, vi)``.

* SSIM is ``ssim(fused, ir) + ssim(fused, vi)`` with scikit-image's defaults (7x7 uniform
  window, sample covariance) and ``data_range=2.0``: the reference called it without a data
  range on float32 arrays, which old scikit-image resolved to the float dtype range (-1, 1).
* VIF is ``vifp(ir, fused) + vifp(vi, fused)``, the classic multi-scale pixel-domain VIF
  (Sheikh & Bovik) with 4 scales of Gaussian windows of size 17, 9, 5, 3 (sigma = size / 5),
  noise variance 2, and 2x decimation between scales.
* Qabf is Xydeas & Petrovic's edge-preservation index with the Sobel operator and the
  constants Tg=0.9994, kg=-15, Dg=0.5, Ta=0.9879, ka=-22, Da=0.8, weights = gradient strength.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lutfuse_ros.metrics._validation import as_gray_pair, as_gray_triplet

#: data range handed to scikit-image's SSIM, reproducing the field's legacy convention.
SSIM_DATA_RANGE = 2.0
#: window side of scikit-image's default SSIM window.
SSIM_WINDOW = 7
#: VIF window side per scale (scale 1 first); each Gaussian has sigma = side / 5.
VIF_WINDOW_SIDES = (17, 9, 5, 3)
#: variance of the visual noise in the VIF model.
VIF_NOISE_VARIANCE = 2.0
#: threshold below which VIF treats a variance as zero.
VIF_EPS = 1e-10
#: smallest image side for which all four VIF scales keep at least one window position.
VIF_MIN_SIDE = 41

_QABF_GRADIENT = (0.9994, -15.0, 0.5)  # Tg, kg, Dg: sigmoid of the gradient-strength ratio
_QABF_ORIENTATION = (0.9879, -22.0, 0.8)  # Ta, ka, Da: sigmoid of the orientation agreement


# ----------------------------------------------------------------------------------- SSIM
def ssim_pair(first: np.ndarray, second: np.ndarray,
              data_range: float = SSIM_DATA_RANGE) -> float:
    """Mean SSIM of two gray images with scikit-image's default window.

    The images are passed to scikit-image as float32, as in the reference protocol (gray
    values are integers, so the cast is exact); SSIM of the legacy ``data_range=2.0`` is
    sensitive to float32 rounding in flat regions, and this keeps it reproducible.

    Args:
        first: Gray image, shape ``(H, W)``, values 0..255, H and W at least 7.
        second: Gray image of the same shape.
        data_range: Dynamic range used for SSIM's stabilising constants.

    Returns:
        The mean SSIM, at most 1 (reached when the images are equal).

    Raises:
        InputError: If the images are invalid, smaller than 7x7, or of different shapes.
        ImportError: If scikit-image (the ``metrics`` extra) is not installed.
    """
    first, second = as_gray_pair(first, second, "first", "second", min_side=SSIM_WINDOW)
    try:
        from skimage.metrics import structural_similarity
    except ImportError as error:  # scikit-image is the optional "metrics" extra
        raise ImportError("SSIM needs scikit-image: pip install 'lutfuse_ros[metrics]'") from error
    return float(structural_similarity(first.astype(np.float32), second.astype(np.float32),
                                       data_range=data_range))


def structural_similarity_sum(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray,
                              data_range: float = SSIM_DATA_RANGE) -> float:
    """Fusion SSIM: ``ssim(fused, ir) + ssim(fused, vi)`` (a sum, at most 2).

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255, sides at least 7.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.
        data_range: Dynamic range for SSIM's constants; 2.0 is the field's legacy value,
            255 the physically meaningful one.

    Returns:
        The sum of the two mean SSIMs.

    Raises:
        InputError: If an image is invalid, too small or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=SSIM_WINDOW)
    return ssim_pair(fused, ir, data_range) + ssim_pair(fused, vi, data_range)


# ------------------------------------------------------------------------------------ VIF
def _gaussian_taps(side: int) -> np.ndarray:
    """1-D taps whose outer product is the normalised ``side x side`` Gaussian of sigma side/5.

    The 2-D window of the reference (MATLAB ``fspecial('gaussian')``) is separable: for these
    sides no tap falls under its ``eps * max`` cut-off, so filtering rows then columns with
    these taps equals filtering with the 2-D window.
    """
    sigma = side / 5.0
    offsets = np.arange(side, dtype=np.float64) - (side - 1) / 2.0
    taps = np.exp(-(offsets * offsets) / (2.0 * sigma * sigma))
    return taps / taps.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering keeping only positions where the window fits ('valid')."""
    side = taps.size
    rows_done = sliding_window_view(image, side, axis=1) @ taps
    return sliding_window_view(rows_done, side, axis=0) @ taps


def _vif_scale_terms(reference: np.ndarray, distorted: np.ndarray,
                     taps: np.ndarray) -> tuple[float, float]:
    """Numerator and denominator contributions of one VIF scale."""
    mean_ref = _filter_valid(reference, taps)
    mean_dist = _filter_valid(distorted, taps)
    var_ref = np.maximum(_filter_valid(reference * reference, taps) - mean_ref * mean_ref, 0.0)
    var_dist = np.maximum(_filter_valid(distorted * distorted, taps) - mean_dist * mean_dist, 0.0)
    covariance = _filter_valid(reference * distorted, taps) - mean_ref * mean_dist

    gain = covariance / (var_ref + VIF_EPS)
    residual_var = var_dist - gain * covariance
    flat_ref = var_ref < VIF_EPS
    gain = np.where(flat_ref, 0.0, gain)
    residual_var = np.where(flat_ref, var_dist, residual_var)
    var_ref = np.where(flat_ref, 0.0, var_ref)
    flat_dist = var_dist < VIF_EPS
    gain = np.where(flat_dist, 0.0, gain)
    residual_var = np.where(flat_dist, 0.0, residual_var)
    negative_gain = gain < 0
    residual_var = np.where(negative_gain, var_dist, residual_var)
    gain = np.where(negative_gain, 0.0, gain)
    residual_var = np.maximum(residual_var, VIF_EPS)  # reference: values <= eps become eps

    numerator = np.sum(np.log10(1.0 + gain * gain * var_ref / (residual_var + VIF_NOISE_VARIANCE)))
    denominator = np.sum(np.log10(1.0 + var_ref / VIF_NOISE_VARIANCE))
    return float(numerator), float(denominator)


def vif_pair(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Pixel-domain multi-scale VIF (VIFP) of ``distorted`` against ``reference``.

    Args:
        reference: Gray source image, shape ``(H, W)``, values 0..255, sides at least 41.
        distorted: Gray image of the same shape (the fused image in fusion evaluation).

    Returns:
        Information kept over information available, summed over 4 scales; 1.0 when the
        ratio is undefined (the reference's NaN convention, e.g. two constant images).

    Raises:
        InputError: If the images are invalid, smaller than 41x41 or of different shapes.
    """
    reference, distorted = as_gray_pair(reference, distorted, "reference", "distorted",
                                        min_side=VIF_MIN_SIDE)
    numerator = denominator = 0.0
    for scale_index, side in enumerate(VIF_WINDOW_SIDES):
        taps = _gaussian_taps(side)
        if scale_index > 0:
            reference = _filter_valid(reference, taps)[::2, ::2]
            distorted = _filter_valid(distorted, taps)[::2, ::2]
        scale_numerator, scale_denominator = _vif_scale_terms(reference, distorted, taps)
        numerator += scale_numerator
        denominator += scale_denominator
    if denominator == 0.0:
        return 1.0 if numerator == 0.0 else float("inf")
    return numerator / denominator


def visual_information_fidelity(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """Fusion VIF: ``vifp(ir, fused) + vifp(vi, fused)`` (a sum over both sources).

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255, sides at least 41.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        The sum of the two VIFP values.

    Raises:
        InputError: If an image is invalid, too small or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=VIF_MIN_SIDE)
    return vif_pair(ir, fused) + vif_pair(vi, fused)


# ----------------------------------------------------------------------------------- Qabf
def _sobel_strength_and_angle(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradient magnitude and orientation, zero padding, the reference's signs.

    The reference convolves (kernel flipped) with the horizontal and vertical Sobel kernels;
    with zero padding that is ``gx = smooth(left) - smooth(right)`` and
    ``gy = smooth(below) - smooth(above)``. Orientation is ``arctan(gy / gx)`` in
    (-pi/2, pi/2), and pi/2 where ``gx == 0``.
    """
    padded = np.pad(image, 1)
    column_smoothed = padded[:-2, :] + 2.0 * padded[1:-1, :] + padded[2:, :]
    row_smoothed = padded[:, :-2] + 2.0 * padded[:, 1:-1] + padded[:, 2:]
    grad_x = column_smoothed[:, :-2] - column_smoothed[:, 2:]
    grad_y = row_smoothed[2:, :] - row_smoothed[:-2, :]
    strength = np.sqrt(grad_x * grad_x + grad_y * grad_y)
    vertical = grad_x == 0
    ratio = np.divide(grad_y, grad_x, out=np.zeros_like(grad_y), where=~vertical)
    angle = np.where(vertical, np.pi / 2, np.arctan(ratio))
    return strength, angle


def _edge_preservation(source_strength: np.ndarray, source_angle: np.ndarray,
                       fused_strength: np.ndarray, fused_angle: np.ndarray) -> np.ndarray:
    """Per-pixel edge preservation Q^{SF} of one source in the fused image.

    The strength ratio is the smaller over the larger magnitude; where both are exactly
    equal the reference stores the fused magnitude itself (not 1), reproduced here.
    """
    source_larger = source_strength > fused_strength
    fused_larger = source_strength < fused_strength
    strength_ratio = fused_strength.copy()  # the reference's value where both are equal
    np.divide(fused_strength, source_strength, out=strength_ratio, where=source_larger)
    np.divide(source_strength, fused_strength, out=strength_ratio, where=fused_larger)
    angle_agreement = 1.0 - np.abs(source_angle - fused_angle) / (np.pi / 2)
    scale_g, slope_g, centre_g = _QABF_GRADIENT
    scale_a, slope_a, centre_a = _QABF_ORIENTATION
    strength_term = scale_g / (1.0 + np.exp(slope_g * (strength_ratio - centre_g)))
    angle_term = scale_a / (1.0 + np.exp(slope_a * (angle_agreement - centre_a)))
    return strength_term * angle_term


def edge_preservation_qabf(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """Qabf (Xydeas & Petrovic): edge information transferred from the sources to ``fused``.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        ``sum(Q_ir * g_ir + Q_vi * g_vi) / sum(g_ir + g_vi)`` in 0..1, where ``g`` is a
        source's Sobel magnitude; NaN when neither source has any gradient.

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi)
    fused_strength, fused_angle = _sobel_strength_and_angle(fused)
    weighted_sum = weight_total = 0.0
    for source in (ir, vi):
        strength, angle = _sobel_strength_and_angle(source)
        preservation = _edge_preservation(strength, angle, fused_strength, fused_angle)
        weighted_sum += float(np.sum(preservation * strength))
        weight_total += float(np.sum(strength))
    if weight_total == 0.0:
        return float("nan")
    return weighted_sum / weight_total

"""The field's infrared + visible fusion metrics, and the protocol's gray-image reader.

All metrics work on gray images as numpy arrays of shape ``(H, W)`` with values 0..255 (float
or integer; computed in float64). Metrics comparing the fused image with its sources take the
arguments in the order of the field's reference evaluators: ``metric(fused, ir, vi)``.

Reference conventions (the CDDFuse / MMDRFuse ``Evaluator``), reproduced here:

* gray read: ``cv2.imread`` (BGR uint8) -> float32 -> ``cv2.COLOR_BGR2GRAY`` -> ``np.round``;
* EN in bits, MI in nats, SSIM and VIF summed over both sources, CC averaged over them;
* PSNR = ``10 log10(255^2 / MSE)`` with MSE the mean of the fused image's MSE to each source.

Single-image metrics: EN, SD, SF, AG. Fused-vs-sources metrics: MI, SCD, VIF, Qabf, SSIM, CC,
PSNR (and MSE). :func:`evaluate_pair` computes them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics._validation import as_gray_image, as_gray_triplet
from lutfuse_ros.metrics.information import entropy, mutual_information
from lutfuse_ros.metrics.structural import (
    VIF_MIN_SIDE,
    edge_preservation_qabf,
    structural_similarity_sum,
    visual_information_fidelity,
)

#: metrics computed by :func:`evaluate_pair`, in the order reports print them.
METRIC_NAMES: tuple[str, ...] = (
    "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "CC", "PSNR")
#: peak value in the PSNR convention of the field (CDDFuse).
PSNR_PEAK = 255.0


def read_gray(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as the protocol's gray image.

    ``cv2.imread`` in colour (BGR uint8; gray files are replicated to 3 channels) -> float32
    -> ``cv2.cvtColor(..., COLOR_BGR2GRAY)`` -> ``np.round``. Colour conversion happens in
    float32 before rounding, exactly as in the reference evaluators.

    Args:
        path: Image file readable by OpenCV (PNG, JPEG, BMP, TIFF...).

    Returns:
        float32 array of shape ``(H, W)`` holding integer gray values 0..255.

    Raises:
        InputError: If the file does not exist or OpenCV cannot decode it.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError(f"cannot read image {file}: no such file")
    bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {file}: OpenCV could not decode it")
    gray = cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2GRAY)
    return np.round(gray)


def standard_deviation(image: np.ndarray) -> float:
    """SD: population standard deviation of the gray values (contrast).

    Args:
        image: Gray image, shape ``(H, W)``, values 0..255.

    Returns:
        ``std(image)`` with ``ddof=0``.

    Raises:
        InputError: If ``image`` is not a finite 2-D array.
    """
    return float(np.std(as_gray_image(image, "image", min_side=1)))


def spatial_frequency(image: np.ndarray) -> float:
    """SF: ``sqrt(mean(dI/dx^2) + mean(dI/dy^2))`` with forward differences, no padding.

    Args:
        image: Gray image, shape ``(H, W)``, values 0..255, both sides at least 2.

    Returns:
        The spatial frequency.

    Raises:
        InputError: If ``image`` is invalid or has a side shorter than 2.
    """
    gray = as_gray_image(image, "image")
    along_rows = np.diff(gray, axis=1)
    along_columns = np.diff(gray, axis=0)
    return float(np.sqrt(np.mean(along_rows ** 2) + np.mean(along_columns ** 2)))


def average_gradient(image: np.ndarray) -> float:
    """AG: mean of ``sqrt((gx^2 + gy^2) / 2)``.

    Gradients are central differences halved inside the image and one-sided at the borders
    (``np.gradient``), as in the reference.

    Args:
        image: Gray image, shape ``(H, W)``, values 0..255, both sides at least 2.

    Returns:
        The average gradient.

    Raises:
        InputError: If ``image`` is invalid or has a side shorter than 2.
    """
    gray = as_gray_image(image, "image")
    grad_y, grad_x = np.gradient(gray)
    return float(np.mean(np.sqrt((grad_x ** 2 + grad_y ** 2) / 2.0)))


def _pearson(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of two equally shaped arrays; NaN if either is constant."""
    first_centred = first - first.mean()
    second_centred = second - second.mean()
    denominator = np.sqrt(np.sum(first_centred ** 2) * np.sum(second_centred ** 2))
    if denominator == 0.0:
        return float("nan")
    return float(np.sum(first_centred * second_centred) / denominator)


def correlation_coefficient(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """CC: mean of the Pearson correlations of ``fused`` with each source.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        ``(corr(ir, fused) + corr(vi, fused)) / 2`` in -1..1; NaN if an image is constant.

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=1)
    return (_pearson(ir, fused) + _pearson(vi, fused)) / 2.0


def sum_of_correlations_of_differences(fused: np.ndarray, ir: np.ndarray,
                                       vi: np.ndarray) -> float:
    """SCD (Aslantas & Bendes): ``corr(ir, fused - vi) + corr(vi, fused - ir)``.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        The sum of both correlations, in -2..2; NaN if an image or difference is constant.

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=1)
    return _pearson(ir, fused - vi) + _pearson(vi, fused - ir)


def mean_squared_error(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """MSE: mean of the fused image's mean squared error to each source.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        ``(mean((fused - ir)^2) + mean((fused - vi)^2)) / 2``.

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=1)
    return float((np.mean((fused - ir) ** 2) + np.mean((fused - vi) ** 2)) / 2.0)


def peak_signal_to_noise_ratio(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """PSNR in dB: ``10 log10(255^2 / MSE)`` with MSE from :func:`mean_squared_error`.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        The PSNR in decibels; ``inf`` when ``fused`` equals both sources.

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    error = mean_squared_error(fused, ir, vi)
    if error == 0.0:
        return float("inf")
    return float(10.0 * np.log10(PSNR_PEAK ** 2 / error))


def evaluate_pair(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` for one fused image and its two sources.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255, sides at least 41 (VIF).
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        ``{"EN": ..., "SD": ..., ..., "PSNR": ...}`` in the order of :data:`METRIC_NAMES`.

    Raises:
        InputError: If an image is invalid, smaller than 41x41, or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=VIF_MIN_SIDE)
    return {
        "EN": entropy(fused),
        "SD": standard_deviation(fused),
        "SF": spatial_frequency(fused),
        "AG": average_gradient(fused),
        "MI": mutual_information(fused, ir, vi),
        "SCD": sum_of_correlations_of_differences(fused, ir, vi),
        "VIF": visual_information_fidelity(fused, ir, vi),
        "Qabf": edge_preservation_qabf(fused, ir, vi),
        "SSIM": structural_similarity_sum(fused, ir, vi),
        "CC": correlation_coefficient(fused, ir, vi),
        "PSNR": peak_signal_to_noise_ratio(fused, ir, vi),
    }

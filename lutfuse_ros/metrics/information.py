"""Information-theoretic fusion metrics: entropy (EN) and mutual information (MI).

Conventions follow the field's reference evaluators (the CDDFuse / MMDRFuse ``Evaluator``):
EN is the Shannon entropy in bits of the 256-bin histogram of the rounded image; MI is the
mutual information in nats (natural logarithm) between the fused image and each source, with
every distinct gray value treated as a label, summed over both sources.
"""

from __future__ import annotations

import numpy as np

from lutfuse_ros.metrics._validation import as_gray_image, as_gray_pair, as_gray_triplet

GRAY_LEVELS = 256


def entropy(image: np.ndarray) -> float:
    """Shannon entropy EN of an image's gray-level histogram, in bits.

    The image is rounded to integers and clipped to 0..255 (the reference casts to uint8 after
    rounding; clipping only differs for values it would wrap), then histogrammed in 256 bins.

    Args:
        image: Gray image, shape ``(H, W)``, float or integer, values 0..255.

    Returns:
        ``-sum(p * log2(p))`` over the non-empty bins; 0 for a constant image, at most 8.

    Raises:
        InputError: If ``image`` is not a finite 2-D array.
    """
    gray = as_gray_image(image, "image", min_side=1)
    levels = np.clip(np.round(gray), 0, GRAY_LEVELS - 1).astype(np.intp).ravel()
    probabilities = np.bincount(levels, minlength=GRAY_LEVELS) / levels.size
    nonzero = probabilities[probabilities > 0]
    return float(-np.sum(nonzero * np.log2(nonzero)))


def _as_labels(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Map every distinct value to a dense integer label; returns (labels, label count)."""
    distinct, labels = np.unique(values.ravel(), return_inverse=True)
    return labels.ravel(), distinct.size


def mutual_information_pair(first: np.ndarray, second: np.ndarray) -> float:
    """Mutual information between two images, in nats, gray values taken as labels.

    Equal to ``sklearn.metrics.mutual_info_score(first.ravel(), second.ravel())``: each
    distinct value (not a fixed 256-bin grid) is one label, so non-integer images such as an
    unrounded average keep all their levels.

    Args:
        first: Gray image, shape ``(H, W)``.
        second: Gray image, shape ``(H, W)``, same shape as ``first``.

    Returns:
        ``sum p(a, b) * ln(p(a, b) / (p(a) p(b)))``, non-negative.

    Raises:
        InputError: If the images are invalid or their shapes differ.
    """
    first, second = as_gray_pair(first, second, "first", "second", min_side=1)
    first_labels, first_count = _as_labels(first)
    second_labels, second_count = _as_labels(second)
    joint_counts = np.bincount(first_labels * second_count + second_labels,
                               minlength=first_count * second_count)
    joint_counts = joint_counts.reshape(first_count, second_count)
    total = float(first_labels.size)
    first_marginal = joint_counts.sum(axis=1) / total
    second_marginal = joint_counts.sum(axis=0) / total
    rows, cols = np.nonzero(joint_counts)
    joint = joint_counts[rows, cols] / total
    information = np.sum(joint * (np.log(joint) - np.log(first_marginal[rows])
                                  - np.log(second_marginal[cols])))
    return float(max(information, 0.0))


def mutual_information(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """Fusion MI: ``MI(fused, ir) + MI(fused, vi)`` in nats.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.

    Returns:
        The sum of the two mutual informations (symmetric in the roles of ``ir`` and ``vi``).

    Raises:
        InputError: If an image is invalid or the shapes differ.
    """
    fused, ir, vi = as_gray_triplet(fused, ir, vi, min_side=1)
    return mutual_information_pair(fused, ir) + mutual_information_pair(fused, vi)

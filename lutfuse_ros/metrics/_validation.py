"""Input checks shared by the fusion metrics.

Every metric takes gray images as 2-D arrays of shape ``(H, W)`` holding values in 0..255;
these helpers turn them into float64 and raise :class:`~lutfuse_ros.errors.InputError` with a
message naming the offending argument when they are not usable.
"""

from __future__ import annotations

import numpy as np

from lutfuse_ros.errors import InputError


def as_gray_image(image: np.ndarray, name: str, min_side: int = 2) -> np.ndarray:
    """Validate one gray image and return it as a float64 array.

    Args:
        image: Array of shape ``(H, W)``, real-valued, finite, gray levels 0..255.
        name: How the argument is called in error messages (``"fused"``, ``"ir"``...).
        min_side: Smallest allowed height and width.

    Returns:
        The image as a C-contiguous float64 array of shape ``(H, W)``.

    Raises:
        InputError: If ``image`` is not a 2-D real array, is smaller than ``min_side`` on a
            side, or holds NaN or infinite values.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise InputError(f"{name}: expected a gray image of shape (H, W), got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
            or image.dtype == np.bool_):
        raise InputError(f"{name}: expected a real-valued image, got dtype {image.dtype}")
    height, width = image.shape
    if height < min_side or width < min_side:
        raise InputError(f"{name}: image of shape {image.shape} is too small for this metric "
                         f"(needs at least {min_side}x{min_side})")
    result = np.ascontiguousarray(image, dtype=np.float64)
    if not np.all(np.isfinite(result)):
        raise InputError(f"{name}: image contains NaN or infinite values")
    return result


def as_gray_triplet(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray,
                    min_side: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a fused image and its two sources, which must share one shape.

    Args:
        fused: Fused gray image, shape ``(H, W)``, values 0..255.
        ir: Infrared gray image, shape ``(H, W)``.
        vi: Visible gray image, shape ``(H, W)``.
        min_side: Smallest allowed height and width.

    Returns:
        ``(fused, ir, vi)`` as float64 arrays.

    Raises:
        InputError: If any image is invalid (see :func:`as_gray_image`) or the shapes differ.
    """
    if all(isinstance(a, np.ndarray) for a in (fused, ir, vi)):
        shapes = {"fused": fused.shape, "ir": ir.shape, "vi": vi.shape}
        if len(set(shapes.values())) != 1:
            listed = ", ".join(f"{key} {value}" for key, value in shapes.items())
            raise InputError(f"fused and source images must have the same shape, got {listed}")
    return (as_gray_image(fused, "fused", min_side), as_gray_image(ir, "ir", min_side),
            as_gray_image(vi, "vi", min_side))


def as_gray_pair(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str,
                 min_side: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate two gray images that must share one shape.

    Args:
        first: Gray image, shape ``(H, W)``.
        second: Gray image, shape ``(H, W)``.
        first_name: Name of ``first`` in error messages.
        second_name: Name of ``second`` in error messages.
        min_side: Smallest allowed height and width.

    Returns:
        Both images as float64 arrays.

    Raises:
        InputError: If either image is invalid or their shapes differ.
    """
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray) \
            and first.shape != second.shape:
        raise InputError(f"{first_name} and {second_name} must have the same shape, got "
                         f"{first.shape} and {second.shape}")
    return as_gray_image(first, first_name, min_side), as_gray_image(second, second_name, min_side)

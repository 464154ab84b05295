"""Colour conversions between RGB/BGR and full-range YCbCr (JPEG / BT.601).

Both model families fuse only the luminance: the visible image is split into Y, Cb and Cr,
the model produces a fused Y, and the visible chroma is put back. The coefficients are the
ones the official LUT-Fuse code uses (see ``docs`` in the README), all on a [0, 1] scale.
"""

from __future__ import annotations

import cv2
import numpy as np

LUMA_WEIGHTS_RGB = (0.299, 0.587, 0.114)
CB_WEIGHTS_RGB = (-0.168736, -0.331264, 0.5)
CR_WEIGHTS_RGB = (0.5, -0.418688, -0.081312)
# Inverse: R = Y + 1.402 (Cr - 0.5); G = Y - 0.344136 (Cb - 0.5) - 0.714136 (Cr - 0.5);
# B = Y + 1.772 (Cb - 0.5).
CR_TO_R = 1.402
CB_TO_G = -0.344136
CR_TO_G = -0.714136
CB_TO_B = 1.772


def split_luma_chroma(visible: np.ndarray, order: str = "bgr") -> tuple[np.ndarray, np.ndarray,
                                                                        np.ndarray]:
    """Split a visible image into float32 Y, Cb and Cr planes.

    Each plane is the float32 expression ``offset + w_r * r + w_g * g + w_b * b`` (evaluated left
    to right, ``r = R * float32(1/255)``), computed through per-channel 256-entry tables so the
    values are bit-identical to evaluating it on the float image, at a fraction of the cost.

    Args:
        visible: ``(H, W, 3)`` uint8 image in ``order`` channel order, or ``(H, W)`` uint8 gray.
        order: ``"bgr"`` or ``"rgb"``; ignored for gray input.

    Returns:
        ``(y, cb, cr)``, each ``(H, W)`` float32 in [0, 1]. For gray input Cb = Cr = 0.5.
    """
    if visible.ndim == 2:
        y = luma_plane(visible)
        half = np.full_like(y, 0.5)
        return y, half, half.copy()
    planes = _rgb_planes(visible, order)
    return (_weighted_sum(planes, _LUMA_TABLES), _weighted_sum(planes, _CB_TABLES),
            _weighted_sum(planes, _CR_TABLES))


def luma_plane(visible: np.ndarray, order: str = "bgr") -> np.ndarray:
    """Full-range BT.601 luminance of a uint8 image, as the models compute it.

    Bit-identical to :func:`lutfuse_ros.families.features.rgb_to_luma` applied to the float32
    RGB image ``visible * float32(1/255)`` (same products, same order of additions).

    Args:
        visible: ``(H, W, 3)`` uint8 in ``order`` channel order, or ``(H, W)`` uint8 gray.
        order: ``"bgr"`` or ``"rgb"``; ignored for gray input.

    Returns:
        ``(H, W)`` float32 Y on [0, 1].
    """
    if visible.ndim == 2:
        return cv2.LUT(visible, _UNIT_LEVELS)
    return _weighted_sum(_rgb_planes(visible, order), _LUMA_TABLES)


def replace_luma(visible: np.ndarray, luma: np.ndarray, fused_luma: np.ndarray,
                 order: str = "bgr", rounding: str = "round") -> np.ndarray:
    """Put a fused luminance into a visible image, keeping its chroma, as uint8.

    Replacing Y while keeping Cb and Cr changes every RGB channel by the same amount,
    ``fused_luma - luma``, so ``RGB_out = RGB_in + 255 * (fused - Y)``, clamped to [0, 255]
    (the official LUT-Fuse code clamps RGB, not Y). This equals
    ``merge_luma_chroma(fused, *split_luma_chroma(visible)[1:])`` up to the 6-digit YCbCr
    coefficients (differences below 3e-4 of a grey level) and avoids building Cb and Cr.

    Args:
        visible: ``(H, W, 3)`` uint8 in ``order``, or ``(H, W)`` uint8 gray (the result is
            then the fused luminance as a gray-looking ``(H, W, 3)`` image).
        luma: ``(H, W)`` float32 Y of ``visible`` (:func:`luma_plane`).
        fused_luma: ``(H, W)`` float32 fused Y, nominally [0, 1] (may exceed it).
        order: channel order of ``visible`` and of the result.
        rounding: ``"round"`` (nearest; exact halves go to even) or ``"truncate"`` (the
            official save step).

    Returns:
        ``(H, W, 3)`` uint8 in ``order``.
    """
    if visible.ndim == 2:
        gray = to_uint8(fused_luma, rounding)
        return np.repeat(gray[..., None], 3, axis=2)
    if order not in ("bgr", "rgb"):
        raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
    delta = np.subtract(fused_luma, luma, dtype=np.float32)
    delta *= np.float32(255.0)
    if rounding == "round":  # one saturating OpenCV pass (ties round to even)
        return cv2.add(visible, cv2.merge((delta, delta, delta)), dtype=cv2.CV_8U)
    if rounding != "truncate":
        raise ValueError(f"rounding must be 'round' or 'truncate', got {rounding!r}")
    shifted = np.add(visible, delta[..., None], dtype=np.float32)
    np.clip(shifted, 0.0, 255.0, out=shifted)
    return shifted.astype(np.uint8)


def merge_luma_chroma(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, order: str = "bgr",
                      rounding: str = "round") -> np.ndarray:
    """Recombine a fused luminance with visible chroma into a uint8 colour image.

    The luminance is *not* clamped before the conversion (the official LUT-Fuse code clamps
    only the RGB result), so a Y above 1 brightens all three channels until they saturate.

    Args:
        y: ``(H, W)`` float32 fused luminance, nominally [0, 1] (may exceed it).
        cb: ``(H, W)`` float32 blue-difference chroma in [0, 1].
        cr: ``(H, W)`` float32 red-difference chroma in [0, 1].
        order: channel order of the result, ``"bgr"`` or ``"rgb"``.
        rounding: ``"round"`` (nearest) or ``"truncate"`` (the official save step).

    Returns:
        ``(H, W, 3)`` uint8 image in ``order``.
    """
    cbc = cb - np.float32(0.5)
    crc = cr - np.float32(0.5)
    r = y + np.float32(CR_TO_R) * crc
    g = y + np.float32(CB_TO_G) * cbc + np.float32(CR_TO_G) * crc
    b = y + np.float32(CB_TO_B) * cbc
    planes = (b, g, r) if order == "bgr" else (r, g, b)
    return to_uint8(np.stack(planes, axis=-1), rounding)


def to_uint8(image01: np.ndarray, rounding: str = "round") -> np.ndarray:
    """Map a float image on [0, 1] to uint8, clamping first.

    Args:
        image01: float array of any shape, nominally in [0, 1].
        rounding: ``"round"`` to nearest or ``"truncate"`` toward zero.

    Returns:
        uint8 array of the same shape.
    """
    scaled = np.clip(image01, 0.0, 1.0) * np.float32(255.0)
    if rounding == "round":
        scaled += np.float32(0.5)
    elif rounding != "truncate":
        raise ValueError(f"rounding must be 'round' or 'truncate', got {rounding!r}")
    return scaled.astype(np.uint8)


def _term_tables(weights_rgb: tuple[float, float, float], offset: float | None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel 256-entry float32 tables ``w * float32(v / 255)`` for R, G and B.

    The offset (if any) is folded into the red table, whose term is added first.
    """
    levels = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)
    red = np.float32(weights_rgb[0]) * levels
    if offset is not None:
        red = np.float32(offset) + red
    tables = (red, np.float32(weights_rgb[1]) * levels, np.float32(weights_rgb[2]) * levels)
    for table in tables:
        table.flags.writeable = False
    return tables


def _rgb_planes(visible: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The uint8 R, G, B planes of an ``(H, W, 3)`` image in ``order``."""
    first, green, last = cv2.split(visible)
    if order == "bgr":
        return last, green, first
    if order == "rgb":
        return first, green, last
    raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")


def _weighted_sum(planes: tuple[np.ndarray, np.ndarray, np.ndarray],
                  tables: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``(T_r[R] + T_g[G]) + T_b[B]`` in float32 (the order of the float expression)."""
    red, green, blue = (cv2.LUT(plane, table) for plane, table in zip(planes, tables))
    total = cv2.add(red, green)
    return cv2.add(total, blue, dst=total)


_LUMA_TABLES = _term_tables(LUMA_WEIGHTS_RGB, None)
_CB_TABLES = _term_tables(CB_WEIGHTS_RGB, 0.5)
_CR_TABLES = _term_tables(CR_WEIGHTS_RGB, 0.5)
#: ``v * float32(1/255)`` for every uint8 level, as a cv2.LUT table.
_UNIT_LEVELS = (np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)).reshape(1, 256)
_UNIT_LEVELS.flags.writeable = False

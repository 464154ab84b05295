"""Colour conversions between RGB/BGR and full-range YCbCr (JPEG / BT.601).

Both model families fuse only the luminance: the visible image is split into Y, Cb and Cr,
the model produces a fused Y, and the visible chroma is put back. The coefficients are the
ones the official LUT-Fuse code uses (see ``docs`` in the README), all on a [0, 1] scale.
"""

from __future__ import annotations

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

    Args:
        visible: ``(H, W, 3)`` uint8 image in ``order`` channel order, or ``(H, W)`` uint8 gray.
        order: ``"bgr"`` or ``"rgb"``; ignored for gray input.

    Returns:
        ``(y, cb, cr)``, each ``(H, W)`` float32 in [0, 1]. For gray input Cb = Cr = 0.5.
    """
    if visible.ndim == 2:
        y = visible.astype(np.float32) * np.float32(1.0 / 255.0)
        half = np.full_like(y, 0.5)
        return y, half, half.copy()
    rgb = _as_rgb_float(visible, order)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = LUMA_WEIGHTS_RGB[0] * r + LUMA_WEIGHTS_RGB[1] * g + LUMA_WEIGHTS_RGB[2] * b
    cb = 0.5 + CB_WEIGHTS_RGB[0] * r + CB_WEIGHTS_RGB[1] * g + CB_WEIGHTS_RGB[2] * b
    cr = 0.5 + CR_WEIGHTS_RGB[0] * r + CR_WEIGHTS_RGB[1] * g + CR_WEIGHTS_RGB[2] * b
    return y.astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)


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


def _as_rgb_float(visible: np.ndarray, order: str) -> np.ndarray:
    if order == "bgr":
        visible = visible[..., ::-1]
    elif order != "rgb":
        raise ValueError(f"order must be 'bgr' or 'rgb', got {order!r}")
    return visible.astype(np.float32) * np.float32(1.0 / 255.0)

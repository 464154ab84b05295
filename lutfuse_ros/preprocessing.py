"""Thermal normalisation and sensor alignment (numpy + OpenCV, no ROS).

Real thermal cameras deliver 16-bit radiometric counts and rarely share the RGB camera's
resolution or field of view. These stages turn a raw thermal frame into an 8-bit image
registered to the visible one before fusion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lutfuse_ros.errors import ConfigError, InputError

THERMAL_MODES = ("percentile", "minmax", "fixed")
ALIGNMENT_MODES = ("none", "resize_thermal", "resize_visible", "homography")


@dataclass
class ThermalConfig:
    """How a thermal frame becomes 8-bit.

    Attributes:
        mode: ``percentile`` (clip to the low/high percentiles, default), ``minmax`` or
            ``fixed`` (``fixed_range`` in raw counts). Applies to 16-bit frames, and to 8-bit
            frames too when ``normalise_8bit`` is set (else they pass through unchanged).
        low_percentile: lower clip percentile, 0..100.
        high_percentile: upper clip percentile, 0..100, above ``low_percentile``.
        fixed_range: ``(low, high)`` raw counts for ``fixed`` mode.
        normalise_8bit: also stretch 8-bit frames.
        clahe: apply contrast-limited adaptive histogram equalisation after scaling.
        clahe_clip_limit: CLAHE clip limit.
        clahe_tiles: CLAHE tile grid size (tiles per side).
    """

    mode: str = "percentile"
    low_percentile: float = 1.0
    high_percentile: float = 99.0
    fixed_range: tuple[float, float] = (0.0, 65535.0)
    normalise_8bit: bool = False
    clahe: bool = False
    clahe_clip_limit: float = 2.0
    clahe_tiles: int = 8

    def __post_init__(self) -> None:
        if self.mode not in THERMAL_MODES:
            raise ConfigError(f"thermal mode must be one of {THERMAL_MODES}, got {self.mode!r}")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ConfigError("thermal percentiles must satisfy 0 <= low < high <= 100, got "
                              f"{self.low_percentile}, {self.high_percentile}")
        low, high = self.fixed_range
        if not high > low:
            raise ConfigError(f"thermal fixed_range must be (low, high) with high > low, "
                              f"got {self.fixed_range}")
        if self.clahe_clip_limit <= 0 or self.clahe_tiles < 1:
            raise ConfigError("clahe_clip_limit must be > 0 and clahe_tiles >= 1")


class ThermalNormaliser:
    """Map a raw thermal frame to uint8 according to a :class:`ThermalConfig`."""

    def __init__(self, config: ThermalConfig | None = None) -> None:
        self.config = config or ThermalConfig()
        self._clahe = (cv2.createCLAHE(clipLimit=self.config.clahe_clip_limit,
                                       tileGridSize=(self.config.clahe_tiles,) * 2)
                       if self.config.clahe else None)

    def __call__(self, thermal: np.ndarray) -> np.ndarray:
        """Normalise one frame.

        Args:
            thermal: ``(H, W)`` uint8 or uint16 raw thermal frame.

        Returns:
            ``(H, W)`` uint8.
        """
        if thermal.dtype == np.uint8 and not self.config.normalise_8bit:
            scaled = thermal
        else:
            low, high = self._range(thermal)
            scaled = _stretch_to_uint8(thermal, low, high)
        if self._clahe is not None:
            scaled = self._clahe.apply(np.ascontiguousarray(scaled))
        return scaled

    def _range(self, thermal: np.ndarray) -> tuple[float, float]:
        config = self.config
        if config.mode == "fixed":
            return config.fixed_range
        if config.mode == "minmax":
            return float(thermal.min()), float(thermal.max())
        return _histogram_percentiles(thermal, config.low_percentile, config.high_percentile)


def _histogram_percentiles(image: np.ndarray, low_pct: float, high_pct: float,
                           ) -> tuple[float, float]:
    """Percentiles of an integer image from its histogram (O(pixels), no sort)."""
    counts = np.bincount(image.ravel(), minlength=1)
    cumulative = np.cumsum(counts)
    total = cumulative[-1]
    low = int(np.searchsorted(cumulative, total * low_pct / 100.0, side="left"))
    high = int(np.searchsorted(cumulative, total * high_pct / 100.0, side="left"))
    return float(low), float(max(high, low))


def _stretch_to_uint8(image: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(image.shape, dtype=np.uint8)
    scale = 255.0 / (high - low)
    return cv2.convertScaleAbs(np.clip(image, low, high).astype(np.float32) - np.float32(low),
                               alpha=scale)


@dataclass
class AlignmentConfig:
    """How the thermal image is registered to the visible one.

    Attributes:
        mode: ``none`` (sizes must already match), ``resize_thermal`` (thermal resized to the
            visible size), ``resize_visible`` (visible resized to the thermal size) or
            ``homography`` (thermal warped into the visible image plane).
        homography: row-major 3x3 matrix mapping thermal pixel coordinates to visible pixel
            coordinates (``homography`` mode).
        crop: optional ``(x, y, width, height)`` applied to both images after alignment, in
            the aligned frame (for example to drop the border a warp leaves empty).
    """

    mode: str = "none"
    homography: list[float] = field(default_factory=lambda: [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
    crop: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ALIGNMENT_MODES:
            raise ConfigError(f"alignment mode must be one of {ALIGNMENT_MODES}, got {self.mode!r}")
        matrix = np.asarray(self.homography, dtype=np.float64)
        if matrix.size != 9 or not np.all(np.isfinite(matrix)):
            raise ConfigError(
                f"alignment homography must be 9 finite numbers, got {self.homography}")
        if abs(np.linalg.det(matrix.reshape(3, 3))) < 1e-12:
            raise ConfigError("alignment homography is singular")
        if self.crop is not None:
            if len(self.crop) != 4 or min(self.crop[2:]) <= 0 or min(self.crop[:2]) < 0:
                raise ConfigError(f"alignment crop must be (x, y, width, height) with positive "
                                  f"size, got {self.crop}")


class Aligner:
    """Register a thermal frame to a visible frame per an :class:`AlignmentConfig`."""

    def __init__(self, config: AlignmentConfig | None = None) -> None:
        self.config = config or AlignmentConfig()
        self._matrix = np.asarray(self.config.homography, dtype=np.float64).reshape(3, 3)

    def __call__(self, visible: np.ndarray, thermal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Align a pair.

        Args:
            visible: ``(H, W, 3)`` or ``(H, W)`` uint8.
            thermal: ``(h, w)`` uint8 (already normalised).

        Returns:
            ``(visible, thermal)`` of one size.

        Raises:
            InputError: sizes differ in ``none`` mode, or the crop falls outside the image.
        """
        mode = self.config.mode
        vis_hw, th_hw = visible.shape[:2], thermal.shape[:2]
        if mode == "resize_thermal" and th_hw != vis_hw:
            thermal = cv2.resize(thermal, (vis_hw[1], vis_hw[0]), interpolation=cv2.INTER_LINEAR)
        elif mode == "resize_visible" and th_hw != vis_hw:
            visible = cv2.resize(visible, (th_hw[1], th_hw[0]), interpolation=cv2.INTER_AREA)
        elif mode == "homography":
            thermal = cv2.warpPerspective(thermal, self._matrix, (vis_hw[1], vis_hw[0]),
                                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        elif mode == "none" and th_hw != vis_hw:
            raise InputError(f"visible image is {vis_hw[1]}x{vis_hw[0]} but thermal image is "
                             f"{th_hw[1]}x{th_hw[0]} (width x height); set an alignment mode "
                             "(resize_thermal, resize_visible or homography) to fuse them")
        if self.config.crop is not None:
            visible, thermal = self._crop(visible), self._crop(thermal)
        return visible, thermal

    def _crop(self, image: np.ndarray) -> np.ndarray:
        x, y, width, height = self.config.crop
        if y + height > image.shape[0] or x + width > image.shape[1]:
            raise InputError(f"alignment crop {self.config.crop} exceeds the aligned image size "
                             f"{image.shape[1]}x{image.shape[0]}")
        return image[y:y + height, x:x + width]

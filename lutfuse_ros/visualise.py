"""Pictures for people: side-by-side grids of infrared | visible | fused."""

from __future__ import annotations

import cv2
import numpy as np


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        scale = 255.0 / max(float(image.max()), 1.0)
        image = cv2.convertScaleAbs(image, alpha=scale)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def side_by_side(panels: list[tuple[str, np.ndarray]], height: int | None = None,
                 gap: int = 4) -> np.ndarray:
    """Lay labelled images out in one row.

    Args:
        panels: ``(label, image)`` pairs; images are uint8/uint16 gray or BGR, any sizes.
        height: common panel height in pixels (default: the first panel's height).
        gap: white pixels between panels.

    Returns:
        ``(height + 24, W, 3)`` uint8 BGR with each label above its panel.
    """
    height = height or panels[0][1].shape[0]
    banner = 24
    columns = []
    for label, image in panels:
        image = _as_bgr(image)
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        column = np.full((height + banner, width, 3), 255, np.uint8)
        column[banner:] = resized
        cv2.putText(column, label, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
        columns.append(column)
        columns.append(np.full((height + banner, gap, 3), 255, np.uint8))
    return np.concatenate(columns[:-1], axis=1)


def stack_rows(rows: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Stack grid rows vertically, padding narrower rows on the right with white."""
    width = max(row.shape[1] for row in rows)
    padded = []
    for row in rows:
        pad = np.full((row.shape[0], width - row.shape[1], 3), 255, np.uint8)
        padded += [np.concatenate([row, pad], axis=1), np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(padded[:-1], axis=0)

"""A synthetic, registered night-street scene for the demo (no download, no data files).

The visible frame is a dim street with lit windows and a street lamp; the thermal frame shows
what the camera cannot: a pedestrian in the dark and a car's warm engine and tyres. A good
fusion keeps the visible texture and adds the warm targets.
"""

from __future__ import annotations

import cv2
import numpy as np


def make_demo_pair(height: int = 480, width: int = 640, seed: int = 7,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Render the scene.

    Args:
        height: rows.
        width: columns.
        seed: noise seed (the scene is deterministic for a given seed).

    Returns:
        ``(visible, thermal)``: ``(H, W, 3)`` uint8 BGR and ``(H, W)`` uint16 radiometric-like
        counts (about 7000..9000, as a 16-bit thermal camera delivers).
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = int(height * 0.45)
    u, v = xs / width, ys / height

    sky = 18 + 30 * (1 - v)
    visible = np.dstack([sky * 1.2, sky * 0.9, sky * 0.8]).astype(np.float32)
    thermal = 7000 + 300 * v

    road = (ys > horizon) & (np.abs(u - 0.5) < 0.08 + 0.5 * (v - 0.45) / 0.55)
    visible[road] = (40, 42, 45)
    thermal = np.where(road, 7900 + 200 * v, thermal)
    lane = road & (np.abs(u - 0.5) < 0.004 + 0.01 * (v - 0.45)) & (np.sin(ys * 0.25) > 0)
    visible[lane] = (150, 160, 170)

    for left, top, right, colour in ((0.02, 0.12, 0.22, 55), (0.74, 0.05, 0.98, 60)):
        x0, x1, y0 = int(left * width), int(right * width), int(top * height)
        visible[y0:horizon, x0:x1] = (colour, colour - 5, colour - 10)
        thermal[y0:horizon, x0:x1] = 7600
        for wy in range(y0 + 12, horizon - 20, 28):
            for wx in range(x0 + 8, x1 - 16, 24):
                if rng.random() < 0.45:
                    visible[wy:wy + 14, wx:wx + 10] = (90, 200, 235)
                    thermal[wy:wy + 14, wx:wx + 10] = 7900

    lamp_x, lamp_y = int(0.7 * width), int(0.5 * height)
    glow = np.exp(-((xs - lamp_x) ** 2 + (ys - lamp_y) ** 2) / (2 * (0.09 * width) ** 2))
    visible += glow[..., None] * np.array([120, 200, 240], np.float32)

    walker_x, walker_y = 0.3 * width, 0.62 * height
    body = (((xs - walker_x) / (0.022 * width)) ** 2 + ((ys - walker_y) / (0.09 * height)) ** 2) < 1
    head = ((xs - walker_x) ** 2 + (ys - walker_y + 0.12 * height) ** 2) < (0.018 * width) ** 2
    person = body | head
    visible[person] *= 0.6
    thermal = np.where(person, 9000, thermal)

    car_x0, car_x1 = int(0.52 * width), int(0.68 * width)
    car_y0, car_y1 = int(0.66 * height), int(0.8 * height)
    visible[car_y0:car_y1, car_x0:car_x1] = (30, 30, 70)
    thermal[car_y0:car_y1, car_x0:car_x1] = 8200
    thermal[car_y0:car_y0 + (car_y1 - car_y0) // 3, car_x0:car_x1] = 8700
    for wheel_x in (car_x0 + 12, car_x1 - 12):
        cv2.circle(thermal, (wheel_x, car_y1), 10, 8800, -1)
        cv2.circle(visible, (wheel_x, car_y1), 10, (15, 15, 15), -1)

    visible += rng.normal(0, 3, visible.shape).astype(np.float32)
    thermal = cv2.GaussianBlur(thermal.astype(np.float32), (0, 0), 1.5)
    thermal += rng.normal(0, 12, thermal.shape).astype(np.float32)
    return (np.clip(visible, 0, 255).astype(np.uint8),
            np.clip(thermal, 0, 65535).astype(np.uint16))

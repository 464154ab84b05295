"""What the simulated cameras show: synthetic, rendered or recorded visible/thermal pairs.

The frame sources of :mod:`lutfuse_testing.camera_traffic`: :func:`synthetic_pair`
(deterministic noise, for tests that compare outputs bit for bit), :class:`SyntheticFrames`
(rendered :mod:`lutfuse_ros.demo_scene` pairs) and :class:`VideoFrames` (the aligned clips of
``../shared/data/video``, looped), plus the message layouts (:func:`visible_as_encoding`,
:func:`encode_pair`) and a pinhole ``CameraInfo``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO_DIR = REPO.parent / "shared" / "data" / "video"
#: 16-bit thermal counts made from 8-bit gray: ``offset + gray * gain`` (radiometric-like).
MONO16_OFFSET, MONO16_GAIN = 7000, 8


def synthetic_camera_info(width: int, height: int):
    """Build a pinhole ``sensor_msgs/CameraInfo`` for ``width`` x ``height`` images.

    No distortion, focal length = width, principal point a little off centre.
    """
    from sensor_msgs.msg import CameraInfo

    fx = fy = float(width)
    cx, cy = width / 2 + 3.25, height / 2 - 1.5
    return CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def synthetic_pair(index: int, width: int, height: int, thermal_size: tuple[int, int] | None = None,
                   thermal_bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic random content of pair ``index``.

    Args:
        index: content index (seeds the generator).
        width: visible width in pixels.
        height: visible height in pixels.
        thermal_size: ``(width, height)`` of the thermal image; the visible size when None.
        thermal_bits: 8 (uint8) or 16 (uint16 counts spanning 0..65535).

    Returns:
        ``(visible, thermal)``: ``(H, W, 3)`` uint8 BGR and ``(h, w)`` uint8 or uint16.
    """
    rng = np.random.default_rng(index)
    thermal_width, thermal_height = thermal_size or (width, height)
    visible = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    dtype = np.uint16 if thermal_bits == 16 else np.uint8
    thermal = rng.integers(0, np.iinfo(dtype).max, (thermal_height, thermal_width),
                           dtype=dtype, endpoint=True)
    return visible, thermal


def visible_as_encoding(visible_bgr: np.ndarray, encoding: str) -> np.ndarray:
    """Lay a BGR image out for ``bgr8``, ``rgb8`` or ``mono8``."""
    converters = {"bgr8": lambda a: a, "rgb8": lambda a: np.ascontiguousarray(a[..., ::-1]),
                  "mono8": lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)}
    return converters[encoding](visible_bgr)


def video_clips(video_dir: Path) -> list[str]:
    """Names of the clips present as both ``vi/<name>`` and ``ir/<name>`` (sorted)."""
    if not (video_dir / "vi").is_dir() or not (video_dir / "ir").is_dir():
        return []
    visible = {path.name for path in (video_dir / "vi").glob("*.mp4")}
    return sorted(name for name in visible if (video_dir / "ir" / name).is_file())


def describe_frame_source(video_dir: Path) -> tuple[str, str]:
    """``(kind, description)`` of what the camera will publish: ``video`` or ``synthetic``."""
    clips = video_clips(video_dir)
    if clips:
        return "video", f"video clips {', '.join(clips)} from {video_dir}, looped"
    return "synthetic", (f"no aligned clips in {video_dir} (../shared missing?): publishing "
                         "synthetic lutfuse_ros.demo_scene frames instead")


class VideoFrames:
    """Endless pairs from aligned clips, decoded on the fly (~1 ms per 640x480 pair).

    Args:
        video_dir: folder with ``vi/`` and ``ir/`` clips of the same names.
        size: ``(width, height)`` of the frames returned (resized when the clip differs).
    """

    def __init__(self, video_dir: Path, size: tuple[int, int]) -> None:
        self._dir, self._size = video_dir, size
        self._clips = video_clips(video_dir)
        if not self._clips:
            raise FileNotFoundError(f"no aligned vi/ and ir/ .mp4 clips in {video_dir}")
        self._index = -1
        self._captures: tuple[cv2.VideoCapture, cv2.VideoCapture] | None = None

    def _open_next(self) -> None:
        self.close()
        self._index = (self._index + 1) % len(self._clips)
        name = self._clips[self._index]
        self._captures = (cv2.VideoCapture(str(self._dir / "vi" / name)),
                          cv2.VideoCapture(str(self._dir / "ir" / name)))

    def next_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The next pair: ``(H, W, 3)`` uint8 BGR visible and ``(H, W)`` uint8 gray thermal."""
        for _ in range(len(self._clips) + 1):
            if self._captures is not None:
                (ok_visible, visible), (ok_thermal, thermal) = (c.read() for c in self._captures)
                if ok_visible and ok_thermal:
                    return self._fit(visible), cv2.cvtColor(self._fit(thermal),
                                                            cv2.COLOR_BGR2GRAY)
            self._open_next()
        raise RuntimeError(f"none of the clips in {self._dir} can be decoded")

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        width, height = self._size
        if frame.shape[:2] == (height, width):
            return frame
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        for capture in self._captures or ():
            capture.release()
        self._captures = None


class SyntheticFrames:
    """Endless pairs cycling through a few rendered demo scenes (no data files needed)."""

    def __init__(self, size: tuple[int, int], distinct: int = 8) -> None:
        from lutfuse_ros.demo_scene import make_demo_pair

        width, height = size
        self._pairs = []
        for seed in range(distinct):
            visible, counts = make_demo_pair(height, width, seed=seed)
            gray = np.clip((counts.astype(np.float32) - MONO16_OFFSET) / MONO16_GAIN, 0, 255)
            self._pairs.append((visible, gray.astype(np.uint8)))
        self._next = 0

    def next_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """The next pair: ``(H, W, 3)`` uint8 BGR visible and ``(H, W)`` uint8 gray thermal."""
        pair = self._pairs[self._next % len(self._pairs)]
        self._next += 1
        return pair

    def close(self) -> None:
        self._pairs = []


def encode_pair(visible_bgr: np.ndarray, thermal_gray: np.ndarray, visible_encoding: str,
                thermal_encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """Lay a pair out for its encodings.

    Visible as ``bgr8``/``rgb8``; thermal as ``mono8``/``mono16`` (16-bit:
    ``7000 + 8 * gray`` counts, as a radiometric camera delivers).
    """
    visible = visible_bgr if visible_encoding == "bgr8" else \
        np.ascontiguousarray(visible_bgr[..., ::-1])
    if thermal_encoding == "mono16":
        thermal = (MONO16_OFFSET + thermal_gray.astype(np.uint16) * MONO16_GAIN).astype(np.uint16)
    else:
        thermal = thermal_gray
    return visible, thermal

"""Frames for ``lutfuse make-bag``: registered image folders or a pair of videos, and their timing.

A source is a visible stream and a thermal stream of equal length where frame ``N`` of one is
registered with frame ``N`` of the other: two image folders matched by file stem (sorted by
name), or two videos (``../shared/data/video/{vi,ir}/*.mp4`` are such pairs). Videos carry
their frame rate; folders get one from ``--rate``.

:func:`build_schedule` turns a frame count and rates into the time-ordered list of messages
to write: the visible stream at ``rate``, the thermal stream at ``thermal_rate`` (resampled to
the nearest source frame in time) shifted by a constant sensor offset.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

from lutfuse_ros.bag.common import NS_PER_S, THERMAL, VISIBLE
from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.image_io import find_pairs, read_thermal, read_visible

LOG = logging.getLogger(__name__)


class FolderFrames:
    """Random-access frames of a list of image files.

    Args:
        paths: image files in stream order.
        read: reader returning the frame as an array (``read_visible`` or ``read_thermal``).
    """

    fps: float | None = None

    def __init__(self, paths: list[Path], read: Callable[[Path], np.ndarray]) -> None:
        self.paths = paths
        self._read = read

    @property
    def count(self) -> int:
        """Number of frames."""
        return len(self.paths)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as its reader returns it."""
        return self._read(self.paths[index])

    def close(self) -> None:
        """Nothing to release."""


class VideoFrames:
    """Frames of a video file, read sequentially (requests must not go backwards far).

    Args:
        path: a video OpenCV can decode.
        gray: return ``(H, W)`` uint8 gray frames (thermal videos are stored as 3-channel
            gray) instead of ``(H, W, 3)`` uint8 BGR.

    Raises:
        InputError: the file is missing or cannot be decoded.
    """

    def __init__(self, path: Path, gray: bool) -> None:
        if not path.is_file():
            raise InputError(f"video {path} does not exist")
        self.path = path
        self._gray = gray
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise InputError(f"OpenCV cannot open video {path}")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps: float | None = fps if math.isfinite(fps) and fps > 0 else None
        self.count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if self.count <= 0:
            raise InputError(f"video {path} reports no frames")
        self._next_index = 0
        self._last: tuple[int, np.ndarray] | None = None

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index``; repeated requests for the last frame are served from a cache.

        Raises:
            InputError: the video ends (or fails to decode) before ``index``.
        """
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        if index < self._next_index:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next_index = index
        image = None
        while self._next_index <= index:
            ok, image = self._capture.read()
            if not ok:
                raise InputError(f"video {self.path} ended or failed to decode at frame "
                                 f"{self._next_index} (its header claims {self.count} frames)")
            self._next_index += 1
        if self._gray:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        self._last = (index, image)
        return image

    def close(self) -> None:
        """Release the decoder."""
        self._capture.release()


@dataclass
class FramePairSource:
    """Registered visible and thermal frame streams.

    Attributes:
        visible: visible frames, ``(H, W, 3)`` uint8 BGR.
        thermal: thermal frames, ``(h, w)`` uint8 or uint16.
        count: usable pairs (the shorter stream's length).
        fps: the videos' frame rate, ``None`` for folders.
        description: what was opened, for messages.
    """

    visible: FolderFrames | VideoFrames
    thermal: FolderFrames | VideoFrames
    count: int
    fps: float | None
    description: str

    def close(self) -> None:
        """Release both streams."""
        self.visible.close()
        self.thermal.close()


def open_pair_source(visible: str | os.PathLike[str], thermal: str | os.PathLike[str]
                     ) -> FramePairSource:
    """Open two image folders (paired by file stem) or two videos (paired by frame index).

    Raises:
        InputError: one is a folder and the other is not, a path is missing, no stems match,
            or a video cannot be decoded.
    """
    visible, thermal = Path(visible), Path(thermal)
    for role, path in ((VISIBLE, visible), (THERMAL, thermal)):
        if not path.exists():
            raise InputError(f"--{role} {path} does not exist")
    if visible.is_dir() != thermal.is_dir():
        raise InputError("--visible and --thermal must both be image folders or both be videos")
    if visible.is_dir():
        pairs, unmatched = find_pairs(visible, thermal)
        if not pairs:
            raise InputError(f"no image in {visible} has a partner with the same file stem in "
                             f"{thermal}")
        if unmatched:
            LOG.warning("%d image(s) have no partner and are skipped: %s", len(unmatched),
                        ", ".join(unmatched[:5]) + (" ..." if len(unmatched) > 5 else ""))
        return FramePairSource(FolderFrames([p.visible for p in pairs], read_visible),
                               FolderFrames([p.thermal for p in pairs], read_thermal),
                               len(pairs), None, f"{len(pairs)} image pairs from {visible}")
    visible_video = VideoFrames(visible, gray=False)
    try:
        thermal_video = VideoFrames(thermal, gray=True)
    except InputError:
        visible_video.close()
        raise
    if visible_video.count != thermal_video.count:
        LOG.warning("videos differ in length (%d visible, %d thermal frames): using the first %d",
                    visible_video.count, thermal_video.count,
                    min(visible_video.count, thermal_video.count))
    if (visible_video.fps and thermal_video.fps
            and abs(visible_video.fps - thermal_video.fps) > 1e-3):
        LOG.warning("videos differ in frame rate (%.3f visible, %.3f thermal fps): frames are "
                    "paired by index and timed at the visible rate", visible_video.fps,
                    thermal_video.fps)
    count = min(visible_video.count, thermal_video.count)
    return FramePairSource(visible_video, thermal_video, count, visible_video.fps,
                           f"{count} frames of {visible.name} and {thermal.name}")


class FrameEvent(NamedTuple):
    """One message to write.

    Attributes:
        stamp_ns: header stamp (and bag time), ns since the epoch.
        stream: ``"visible"`` or ``"thermal"``.
        source_index: frame of the source stream it shows.
    """

    stamp_ns: int
    stream: str
    source_index: int


def build_schedule(count: int, rate: float, start_ns: int, thermal_rate: float | None = None,
                   thermal_offset_s: float = 0.0) -> list[FrameEvent]:
    """Time-ordered messages of a visible and a thermal stream cut from ``count`` frame pairs.

    Visible frame ``i`` is stamped ``start + i / rate``. Thermal message ``j`` is stamped
    ``start + j / thermal_rate + thermal_offset_s`` and shows the source frame nearest to
    ``j / thermal_rate`` (so a 9 Hz thermal stream cut from 30 Hz pairs shows every 3rd or 4th
    frame); thermal messages cover the span of the visible ones. Ties sort visible first.

    Args:
        count: frame pairs available (> 0).
        rate: visible frame rate in Hz (> 0).
        start_ns: stamp of the first visible frame, ns since the epoch.
        thermal_rate: thermal frame rate in Hz; ``None`` means ``rate``.
        thermal_offset_s: constant offset added to every thermal stamp (s; may be negative).

    Returns:
        The events sorted by stamp.

    Raises:
        ConfigError: a non-positive count or rate, or a thermal stamp before the epoch.
    """
    thermal_rate = rate if thermal_rate is None else thermal_rate
    if count <= 0:
        raise ConfigError(f"need at least one frame pair, got {count}")
    for name, value in (("--rate", rate), ("--thermal-rate", thermal_rate)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number of Hz, got {value}")
    offset_ns = round(thermal_offset_s * NS_PER_S)
    if start_ns + offset_ns < 0:
        raise ConfigError(f"--thermal-offset {thermal_offset_s} s moves thermal stamps before "
                          "the epoch; use a later --start-time")
    events = [FrameEvent(start_ns + round(i * NS_PER_S / rate), VISIBLE, i) for i in range(count)]
    span_s = (count - 1) / rate
    thermal_count = math.floor(span_s * thermal_rate + 1e-9) + 1
    for j in range(thermal_count):
        time_s = j / thermal_rate
        source = min(count - 1, round(time_s * rate))
        events.append(FrameEvent(start_ns + round(time_s * NS_PER_S) + offset_ns, THERMAL, source))
    events.sort(key=lambda event: (event.stamp_ns, event.stream != VISIBLE))
    return events

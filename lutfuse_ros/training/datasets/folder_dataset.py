"""Image-folder pairs (the MSRS / LLVIP / RoadScene layout) and frame-aligned video clips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.errors import InputError
from lutfuse_ros.image_io import find_pairs, list_images, read_thermal, read_visible
from lutfuse_ros.training.datasets.frames import FrameSource, SequentialSource


class FolderSource(FrameSource):
    """Pairs of ``root/vi/<stem>.*`` and ``root/ir/<stem>.*`` matched by file stem.

    Args:
        root: dataset folder.
        visible_dir: visible sub-folder name.
        thermal_dir: thermal sub-folder name.
        references: optional folder of precomputed teacher outputs (``<stem>.*``; colour
            images are reduced to their BT.601 luminance, 16-bit gray PNGs keep full precision).
        every: keep every N-th pair (sorted by stem).
        max_frames: keep at most this many.
        label: key prefix (default: the folder name).

    Raises:
        InputError: missing folders, no pairs, or a reference folder lacking some stems.
    """

    def __init__(self, root: str | Path, visible_dir: str = "vi", thermal_dir: str = "ir",
                 references: str | Path | None = None, every: int = 1,
                 max_frames: int | None = None, label: str | None = None) -> None:
        self.root = Path(root)
        self.label = label or self.root.name
        visible, thermal = self.root / visible_dir, self.root / thermal_dir
        for folder in (visible, thermal):
            if not folder.is_dir():
                raise InputError(f"training folder {folder} not found (expected {self.root}/"
                                 f"{visible_dir} and {self.root}/{thermal_dir})")
        pairs, self.unmatched = find_pairs(visible, thermal)
        pairs = pairs[::every][:max_frames]
        if not pairs:
            raise InputError(f"no visible/thermal pairs with matching names in {self.root}")
        self._pairs = {f"{self.label}/{pair.name}": pair for pair in pairs}
        self._every, self._max_frames = every, max_frames
        self._references: dict[str, Path] | None = None
        if references is not None:
            available = list_images(references)
            missing = [p.name for p in pairs if p.name not in available]
            if missing:
                raise InputError(f"reference folder {references} lacks {len(missing)} of the "
                                 f"{len(pairs)} frames, e.g. {missing[:3]}")
            self._references = {f"{self.label}/{p.name}": available[p.name] for p in pairs}
            self._reference_root = str(references)

    def keys(self) -> list[str]:
        return list(self._pairs)

    def read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        pair = self._pairs[key]
        return read_visible(pair.visible), read_thermal(pair.thermal)

    def reference_path(self, key: str) -> Path | None:
        return None if self._references is None else self._references[key]

    def describe(self) -> dict:
        info = {"kind": "folder", "label": self.label, "path": str(self.root),
                "frames": len(self._pairs), "every": self._every, "max_frames": self._max_frames}
        if self._references is not None:
            info["references"] = self._reference_root
        return info


class VideoSource(SequentialSource):
    """Two frame-aligned video files (the M3SVD layout).

    Frame N of the thermal clip matches frame N of the visible clip.

    Args:
        visible: visible video path.
        thermal: thermal video path (colour-coded gray is reduced to gray).
        every: keep every N-th frame.
        max_frames: keep at most this many.
        label: key prefix (default: the visible file's stem).
    """

    def __init__(self, visible: str | Path, thermal: str | Path, every: int = 1,
                 max_frames: int | None = None, label: str | None = None) -> None:
        super().__init__()
        self.visible_path, self.thermal_path = Path(visible), Path(thermal)
        self.label = label or self.visible_path.stem
        counts = [_frame_count(p) for p in (self.visible_path, self.thermal_path)]
        self._total = min(counts)
        self._every, self._max_frames = every, max_frames
        self._indices = list(range(0, self._total, every))[:max_frames]
        if not self._indices:
            raise InputError(f"video {self.visible_path} has no frames")

    def keys(self) -> list[str]:
        return [f"{self.label}/{index:06d}" for index in self._indices]

    def iterate(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        wanted = set(self._indices)
        visible, thermal = cv2.VideoCapture(str(self.visible_path)), cv2.VideoCapture(
            str(self.thermal_path))
        try:
            for index in range(self._indices[-1] + 1):
                ok_v, frame_v = visible.read()
                ok_t, frame_t = thermal.read()
                if not (ok_v and ok_t):
                    raise InputError(f"videos {self.visible_path} / {self.thermal_path} ended "
                                     f"at frame {index}, before the expected {self._total}")
                if index in wanted:
                    if frame_t.ndim == 3:
                        frame_t = cv2.cvtColor(frame_t, cv2.COLOR_BGR2GRAY)
                    yield f"{self.label}/{index:06d}", frame_v, frame_t
        finally:
            visible.release()
            thermal.release()

    def describe(self) -> dict:
        return {"kind": "video", "label": self.label, "visible": str(self.visible_path),
                "thermal": str(self.thermal_path), "frames": len(self._indices),
                "every": self._every, "max_frames": self._max_frames,
                "clip_frames": self._total}


def _frame_count(path: Path) -> int:
    if not path.is_file():
        raise InputError(f"video file {path} not found")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError(f"OpenCV cannot open video {path}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if count <= 0:
        raise InputError(f"video {path} reports no frames")
    return count

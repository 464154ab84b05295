"""Registered training frames: sources, the shared preprocessing, and an in-memory cache.

A *frame* is one registered visible/thermal pair after the same preprocessing the node
applies (:class:`~lutfuse_ros.preprocessing.ThermalNormaliser` then
:class:`~lutfuse_ros.preprocessing.Aligner`), optionally downscaled. Sources list frame keys;
:class:`FrameStore` decodes each frame once and keeps it (decoded-frame cache), optionally
also on disk so later runs skip decoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import InputError
from lutfuse_ros.preprocessing import Aligner, AlignmentConfig, ThermalConfig, ThermalNormaliser

LOG = logging.getLogger(__name__)


@dataclass
class Frame:
    """One preprocessed training pair.

    Attributes:
        key: unique id ``source/name`` (used for caches, references and provenance).
        visible_bgr: ``(H, W, 3)`` uint8 BGR (gray visible images are replicated).
        thermal: ``(H, W)`` uint8, normalised and aligned to the visible image.
        reference: ``(H, W)`` float32 teacher luminance on [0, 1], when attached.
    """

    key: str
    visible_bgr: np.ndarray
    thermal: np.ndarray
    reference: np.ndarray | None = None


class FrameSource(ABC):
    """A source of raw registered pairs (before normalisation and alignment)."""

    #: label used as the first part of frame keys.
    label: str

    @abstractmethod
    def keys(self) -> list[str]:
        """Frame keys after subsampling, in a stable order."""

    @abstractmethod
    def read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Decode one frame.

        Returns:
            ``(visible, thermal)``: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` gray, and
            ``(h, w)`` uint8 or uint16 raw thermal.
        """

    def reference_path(self, key: str) -> Path | None:
        """A precomputed teacher output for this frame, if the source has one."""
        return None

    def describe(self) -> dict:
        """Provenance of the source (kind, path, counts, subsampling)."""
        return {"label": self.label, "frames": len(self.keys())}

    def fingerprint(self) -> str:
        """A string that changes when the source's content selection changes."""
        return json.dumps(self.describe(), sort_keys=True)


class SequentialSource(FrameSource):
    """A source read in one pass (video, rosbag); frames are decoded on first use."""

    def __init__(self) -> None:
        self._frames: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    @abstractmethod
    def iterate(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(key, visible, thermal)`` for the kept frames, in order."""

    def _decoded(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self._frames is None:
            self._frames = {key: (vis, th) for key, vis, th in self.iterate()}
            if not self._frames:
                raise InputError(f"source {self.label!r} produced no frames")
        return self._frames

    def keys(self) -> list[str]:
        return list(self._decoded())

    def read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return self._decoded()[key]

    def release(self) -> None:
        """Drop the raw decoded frames (the :class:`FrameStore` keeps processed copies)."""
        self._frames = None


def preprocess_pair(visible: np.ndarray, thermal: np.ndarray, normalise: ThermalNormaliser,
                    align: Aligner, max_side: int = 0, min_side: int = 0,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The node's preprocessing plus training-only resizing.

    Args:
        visible: ``(H, W, 3)`` uint8 BGR or ``(H, W)`` gray.
        thermal: ``(h, w)`` uint8/uint16 raw thermal.
        normalise: thermal normaliser (shared with the node's configuration).
        align: aligner (shared with the node's configuration).
        max_side: downscale so the longer side is at most this (0: keep).
        min_side: upscale so the shorter side is at least this (crop size).

    Returns:
        ``(visible_bgr (H', W', 3) uint8, thermal (H', W') uint8)``.
    """
    visible, thermal = align(visible, normalise(thermal))
    if visible.ndim == 2:
        visible = cv2.cvtColor(visible, cv2.COLOR_GRAY2BGR)
    height, width = thermal.shape
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
    if min_side and min(height, width) * scale < min_side:
        scale = min_side / min(height, width)
    if scale != 1.0:
        size = (max(min_side, round(width * scale)), max(min_side, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        visible = cv2.resize(visible, size, interpolation=interpolation)
        thermal = cv2.resize(thermal, size, interpolation=interpolation)
    return np.ascontiguousarray(visible), np.ascontiguousarray(thermal)


ReferenceLoader = Callable[[str, "Frame"], np.ndarray]


class FrameStore:
    """All frames of all sources, preprocessed once and kept in memory.

    Args:
        sources: frame sources.
        thermal: thermal normalisation settings (as in the node).
        alignment: alignment settings (as in the node).
        max_sides: per-source downscale limit (0: keep), same order as ``sources``.
        min_side: frames smaller than this (the crop size) are upscaled.
        cache_dir: optional folder for ``.npz`` copies of processed frames.
    """

    def __init__(self, sources: list[FrameSource], thermal: ThermalConfig | None = None,
                 alignment: AlignmentConfig | None = None, max_sides: list[int] | None = None,
                 min_side: int = 0, cache_dir: str | os.PathLike | None = None) -> None:
        self.sources = sources
        self._normalise = ThermalNormaliser(thermal or ThermalConfig())
        self._align = Aligner(alignment or AlignmentConfig())
        self._max_sides = max_sides or [0] * len(sources)
        self._min_side = min_side
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._settings = json.dumps({"thermal": repr(thermal), "alignment": repr(alignment)})
        self.keys: list[str] = []
        self._owner: list[int] = []
        for index, source in enumerate(sources):
            source_keys = source.keys()
            self.keys += source_keys
            self._owner += [index] * len(source_keys)
        if len(set(self.keys)) != len(self.keys):
            raise InputError("two frames share a key; give the sources distinct 'name's")
        if not self.keys:
            raise InputError("the training sources hold no frames")
        self._frames: dict[int, Frame] = {}
        self._reference_loader: ReferenceLoader | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def set_reference_loader(self, loader: ReferenceLoader | None) -> None:
        """Attach teacher outputs: ``loader(key, frame) -> (H, W) float32`` on [0, 1]."""
        self._reference_loader = loader
        for frame in self._frames.values():
            frame.reference = None

    def source_of(self, index: int) -> FrameSource:
        """The source that frame ``index`` comes from."""
        return self.sources[self._owner[index]]

    def get(self, index: int) -> Frame:
        """Frame ``index``, decoded and preprocessed on first use."""
        frame = self._frames.get(index)
        if frame is None:
            frame = self._load(index)
            self._frames[index] = frame
        if self._reference_loader is not None and frame.reference is None:
            reference = self._reference_loader(frame.key, frame)
            if reference.shape != frame.thermal.shape:
                reference = cv2.resize(reference, frame.thermal.shape[::-1],
                                       interpolation=cv2.INTER_AREA)
            frame.reference = reference.astype(np.float32, copy=False)
        return frame

    def describe(self) -> list[dict]:
        """Provenance of every source."""
        return [source.describe() | {"max_side": side}
                for source, side in zip(self.sources, self._max_sides)]

    def _cache_path(self, index: int) -> Path | None:
        if self._cache_dir is None:
            return None
        source = self.source_of(index)
        digest = hashlib.sha256((source.fingerprint() + self._settings + self.keys[index]
                                 + str(self._max_sides[self._owner[index]]) + str(self._min_side)
                                 ).encode()).hexdigest()[:24]
        return self._cache_dir / f"{digest}.npz"

    def _load(self, index: int) -> Frame:
        key = self.keys[index]
        cache = self._cache_path(index)
        if cache is not None and cache.is_file():
            with np.load(cache) as stored:
                return Frame(key, stored["visible"], stored["thermal"])
        visible, thermal = self.source_of(index).read(key)
        visible, thermal = preprocess_pair(visible, thermal, self._normalise, self._align,
                                           self._max_sides[self._owner[index]], self._min_side)
        if cache is not None:
            _save_npz_atomic(cache, visible=visible, thermal=thermal)
        return Frame(key, visible, thermal)


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    with atomic_output(path, overwrite=True) as temporary:
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)

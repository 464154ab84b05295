"""Frame sequences (numbered image folders or video files) and their temporal evaluation.

``lutfuse eval --temporal`` measures :mod:`lutfuse_ros.metrics.temporal` on fused videos given
as folders of numbered frames (``000.png, 001.png, ...``; ordered by the numbers in their
names, so ``frame_9`` comes before ``frame_10``) or video files, against infrared and visible
sequences of the same kinds. When every sequence is a folder, frames are matched by file stem
(the stems all folders share); otherwise frame N of each sequence goes with frame N of the
others. Every frame is read as the metrics protocol's gray image (see
:func:`~lutfuse_ros.metrics.fusion_metrics.read_gray`). A fused video stored lossily (MP4) adds
compression flicker of its own: prefer PNG frames.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lutfuse_ros.errors import InputError
from lutfuse_ros.metrics.fusion_metrics import read_gray
from lutfuse_ros.metrics.report import AVERAGE_LABEL, MAX_LABEL, baseline_images, index_images
from lutfuse_ros.metrics.temporal import (
    SOURCE_LABELS,
    TEMPORAL_METRIC_NAMES,
    TemporalScores,
    TemporalStabilityMeter,
)

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names numerically (``f9`` before ``f10``)."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def protocol_gray(bgr: np.ndarray) -> np.ndarray:
    """The protocol gray of a decoded ``(H, W, 3)`` BGR or ``(H, W)`` uint8 frame (float32)."""
    if bgr.ndim == 2:
        return bgr.astype(np.float32)
    return np.round(cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2GRAY))


class VideoSequence:
    """Gray frames of a video file, decoded in order.

    Args:
        path: a video file OpenCV can decode.
        role: what the video is (``fused 'x'``, ``ir``, ``vi``) for messages.

    Raises:
        InputError: If the file is missing or cannot be opened.
    """

    def __init__(self, path: Path, role: str) -> None:
        if not path.is_file():
            raise InputError(f"{role} video {path} does not exist")
        self.path, self.role = path, role
        capture = cv2.VideoCapture(str(path))
        opened = capture.isOpened()
        capture.release()
        if not opened:
            raise InputError(f"OpenCV cannot open {role} video {path}")

    def frames(self) -> Iterator[np.ndarray]:
        """Yield every frame as ``(H, W)`` float32 protocol gray, 0..255."""
        capture = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield protocol_gray(image)
        finally:
            capture.release()


class FolderSequence:
    """Gray frames of a folder of numbered images.

    Args:
        path: the folder.
        role: what the sequence is, for messages.

    Raises:
        InputError: If the folder does not exist or holds two images with one stem.
    """

    def __init__(self, path: Path, role: str) -> None:
        self.path, self.role = path, role
        index = index_images(path, role)
        doubled = {stem: files for stem, files in index.items() if len(files) > 1}
        if doubled:
            stem, files = next(iter(doubled.items()))
            raise InputError(f"several {role} images for {stem} in {path}: "
                             f"{', '.join(f.name for f in files)}")
        self.files = {stem: files[0] for stem, files in index.items()}

    @property
    def stems(self) -> list[str]:
        """Frame names (file stems) in natural order."""
        return sorted(self.files, key=natural_key)

    def frames(self, stems: list[str] | None = None) -> Iterator[np.ndarray]:
        """Yield the frames of ``stems`` (default: all, natural order) as protocol gray."""
        for stem in self.stems if stems is None else stems:
            yield read_gray(self.files[stem])


def open_sequence(path: str | os.PathLike[str], role: str) -> FolderSequence | VideoSequence:
    """A folder (numbered frames) or a video file, by what ``path`` is."""
    location = Path(path)
    if location.is_dir():
        return FolderSequence(location, role)
    return VideoSequence(location, role)


@dataclass
class TemporalReport:
    """Temporal stability of several fused videos of one source sequence.

    Attributes:
        scores: ``{label: TemporalScores}``: the fused videos, the baselines if asked, then
            the two sources (:data:`~lutfuse_ros.metrics.temporal.SOURCE_LABELS`).
        frames: time steps evaluated.
        matching: ``"stem"`` (all folders) or ``"index"``.
        inputs: ``{label: path}`` of every sequence read.
        notes: remarks (frames left out, sequences of different lengths).
    """

    scores: dict[str, TemporalScores] = field(default_factory=dict)
    frames: int = 0
    matching: str = "index"
    inputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _frame_streams(fused: Mapping[str, FolderSequence | VideoSequence],
                   ir: FolderSequence | VideoSequence, vi: FolderSequence | VideoSequence,
                   report: TemporalReport) -> dict[str, Iterator[np.ndarray]]:
    """One iterator of gray frames per sequence, aligned by stem or by index."""
    sequences = {**fused, "ir": ir, "vi": vi}
    if all(isinstance(sequence, FolderSequence) for sequence in sequences.values()):
        report.matching = "stem"
        shared = set.intersection(*(set(sequence.files) for sequence in sequences.values()))
        stems = sorted(shared, key=natural_key)
        for label, sequence in sequences.items():
            left_out = len(sequence.files) - len(stems)
            if left_out:
                report.notes.append(f"{label}: {left_out} frame(s) without partners left out")
        return {label: sequence.frames(stems) for label, sequence in sequences.items()}
    return {label: sequence.frames() for label, sequence in sequences.items()}


def evaluate_sequences(fused: Mapping[str, str | os.PathLike[str]],
                       ir: str | os.PathLike[str], vi: str | os.PathLike[str],
                       baselines: bool = False, max_frames: int | None = None,
                       preset: str = "medium", progress: bool = True) -> TemporalReport:
    """Temporal stability of fused sequences against their source sequences.

    Args:
        fused: ``{label: folder or video}`` of fused sequences (may be empty with
            ``baselines``).
        ir: infrared sequence (folder or video), registered with the visible one.
        vi: visible sequence (folder or video; colour frames are taken as protocol gray).
        baselines: also measure the average and maximum baselines formed from the sources
            (:func:`~lutfuse_ros.metrics.report.baseline_images`).
        max_frames: use at most this many time steps (from the start).
        preset: DIS flow preset.
        progress: show a tqdm bar on stderr.

    Returns:
        The scores per label, the sources last.

    Raises:
        InputError: A sequence is missing or unreadable, frames of one step differ in size,
            or fewer than two time steps could be matched.
    """
    report = TemporalReport()
    sequences = {label: open_sequence(path, f"fused {label!r}") for label, path in fused.items()}
    ir_sequence, vi_sequence = open_sequence(ir, "ir"), open_sequence(vi, "vi")
    report.inputs = {**{label: str(path) for label, path in fused.items()},
                     "ir": str(ir), "vi": str(vi)}
    labels = list(sequences) + ([AVERAGE_LABEL, MAX_LABEL] if baselines else [])
    meter = TemporalStabilityMeter(labels, preset)
    streams = _frame_streams(sequences, ir_sequence, vi_sequence, report)
    bar = _progress_bar(progress, max_frames)
    try:
        while max_frames is None or report.frames < max_frames:
            frames = {label: next(stream, None) for label, stream in streams.items()}
            ended = sorted(label for label, frame in frames.items() if frame is None)
            if ended:
                if len(ended) < len(frames):
                    report.notes.append(f"stopped after {report.frames} frame(s): "
                                        f"{', '.join(ended)} ended first")
                break
            step = {label: frames[label] for label in sequences}
            if baselines:
                try:
                    step.update(baseline_images(frames["ir"], frames["vi"]))
                except InputError as error:
                    raise InputError(f"frame {report.frames}: {error}") from error
            try:
                meter.add(frames["ir"], frames["vi"], step)
            except InputError as error:
                raise InputError(f"frame {report.frames}: {error}") from error
            report.frames += 1
            bar.update()
    finally:
        bar.close()
    if meter.frame_pairs < 1:
        raise InputError(f"temporal metrics need at least 2 matched frames, got {report.frames}")
    report.scores = meter.scores()
    return report


class _NoBar:
    def update(self) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def _progress_bar(enabled: bool, total: int | None) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc="temporal", unit="frame", file=sys.stderr, leave=False)


def _cell(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def temporal_markdown(report: TemporalReport) -> str:
    """A Markdown table of the temporal scores, one row per video, sources last.

    Returns:
        The table (columns: method, tRWE, tWE, tFlicker, frame pairs, valid %) and a line
        on the directions and the matching, plus the report's notes.
    """
    lines = ["| method | tRWE | tWE | tFlicker | frame pairs | motion mask |",
             "|---|---|---|---|---|---|"]
    for label, scores in report.scores.items():
        lines.append(f"| {label} | {_cell(scores.tRWE, 4)} | {_cell(scores.tWE, 3)} | "
                     f"{_cell(scores.tFlicker, 4)} | {scores.frame_pairs} | "
                     f"{_cell(100.0 * scores.valid_fraction, 1)} % |")
    lines += ["", f"Temporal stability over {report.frames} frames (matched by "
              f"{report.matching}); lower is more stable for all three: tRWE = "
              "motion-compensated frame change / neighbour-pixel difference, tWE in gray "
              "levels, tFlicker = unexplained mean-brightness change. The source rows show "
              "how much the inputs themselves change (noise, compression, flow failures)."]
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def temporal_document(report: TemporalReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (NaN and infinities become ``None``)."""
    def number(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return {"metrics": list(TEMPORAL_METRIC_NAMES), "frames": report.frames,
            "matching": report.matching, "inputs": report.inputs, "notes": report.notes,
            "source_rows": list(SOURCE_LABELS),
            "methods": {label: {key: (number(value) if isinstance(value, float) else value)
                                for key, value in scores.as_dict().items()}
                        for label, scores in report.scores.items()}}


def temporal_json(report: TemporalReport) -> str:
    """Strict JSON of :func:`temporal_document`."""
    return json.dumps(temporal_document(report), indent=1, allow_nan=False) + "\n"

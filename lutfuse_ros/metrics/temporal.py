"""Temporal stability of a fused video: motion-compensated change measured against the sources.

A fused video is stable when its frame-to-frame change is the change of the scene, not of the
fusion. Following the flow-warping error of Lai et al. (*Learning Blind Video Temporal
Consistency*, ECCV 2018), each fused frame is compared with the previous fused frame warped
into it by optical flow; the flow is estimated on the **sources**, not on the fused video, so
a fusion cannot hide its own flicker in the flow. For every pair of consecutive frames
``(t-1, t)``:

1. **Motion.** Dense backward and forward flow on the source guide ``G = (ir + vi) / 2``
   (OpenCV DIS, Kroeger et al., ECCV 2016). Pixels whose forward-backward flows disagree
   (the occlusion test of Ruder et al., *Artistic style transfer for videos*, GCPR 2016, that
   Lai et al. use) or whose flow leaves the frame are masked out: mask ``M_t``.
2. **Temporal residual** of a video ``X`` (fused, or a source): ``r_X = X_t - warp(X_{t-1})``
   on ``M_t`` (bilinear warp; gray levels).
3. **Spatial scale** of ``X``: ``s_X = (|X(x+1, y) - X(x, y)| + |X(x, y+1) - X(x, y)|) / 2``,
   the mean absolute difference between neighbouring pixels, on ``M_t``.

Over the whole sequence (sums over all pairs and masked pixels, so every pixel counts once):

* ``tWE`` (warping error) = ``sum |r_X| / sum 1``: gray levels, 0..255, lower is more stable.
  The L1 form of Lai et al.'s ``E_warp``. It also falls when the video loses contrast (a flat
  grey video scores 0), so compare it only between videos of similar contrast.
* ``tRWE`` (relative warping error, the **headline score**) = ``sum |r_X| / sum s_X``: the
  motion-compensated frame-to-frame difference in units of the pixel-to-pixel difference.
  Dimensionless, 0..inf (about 0.1-1 on real video), lower is more stable; 0 for a static or
  exactly motion-compensable video. Invariant to a constant gain and offset of the fused
  video (``a * F + b``, ``a > 0``), so a fusion is not rewarded for low contrast or punished
  for high contrast; a gain or offset that changes from frame to frame (flicker, per-frame
  stretching) raises it. The same score of each source is reported beside it: the sources'
  own noise, compression and flow failures show how much change comes from the inputs.
* ``tFlicker`` (global flicker) = RMS over pairs of ``mean(r_F) - (alpha mean(r_ir) +
  beta mean(r_vi))``, divided by the mean spatial scale of ``F``, where ``alpha, beta`` are
  fitted by least squares over the sequence: the part of the fused frames' motion-compensated
  mean-brightness change that a time-constant blend of the sources' changes cannot explain
  (the brightness-coherency idea of video tone mapping, Boitard et al., SPIE 2012).
  Dimensionless, 0..inf, lower is more stable; same invariance as ``tRWE``; exactly 0 for any
  time-constant linear blend (the average baseline) and NaN for fewer than 3 frame pairs.

Frames are gray ``(H, W)`` arrays of values 0..255 (the fusion metrics' protocol gray of the
fused frame; the infrared and visible frames the fusion was given, on the same pixel grid).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.metrics._validation import as_gray_image

#: names of the temporal scores, in table order.
TEMPORAL_METRIC_NAMES = ("tRWE", "tWE", "tFlicker")
#: OpenCV DIS presets by name.
FLOW_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
#: labels of the source rows reported beside the fused videos.
SOURCE_LABELS = ("source: ir", "source: vi")
#: frame pairs needed before ``tFlicker`` is defined (it fits two weights).
MIN_FLICKER_PAIRS = 3


@dataclass(frozen=True)
class TemporalScores:
    """Temporal stability of one video (see the module doc for the definitions).

    Attributes:
        tRWE: relative warping error, dimensionless, 0..inf, lower is more stable.
        tWE: warping error in gray levels, 0..255, lower is more stable.
        tFlicker: unexplained global brightness change, dimensionless, 0..inf, lower is more
            stable; NaN with fewer than :data:`MIN_FLICKER_PAIRS` frame pairs (and for the
            source rows, which explain themselves).
        frame_pairs: consecutive frame pairs measured.
        valid_fraction: mean fraction of pixels inside the motion mask.
    """

    tRWE: float
    tWE: float
    tFlicker: float
    frame_pairs: int
    valid_fraction: float

    def as_dict(self) -> dict[str, float]:
        """The scores as a plain dict (metric name -> value, plus the counts)."""
        return asdict(self)


@dataclass
class SourceMotion:
    """Motion between two consecutive source frames, shared by every video measured on them.

    Attributes:
        map_x: ``(H, W)`` float32 x coordinate in frame ``t-1`` of each pixel of frame ``t``.
        map_y: ``(H, W)`` float32 y coordinate, likewise.
        mask: ``(H, W)`` bool, True where the flow is forward-backward consistent and stays
            inside the frame.
    """

    map_x: np.ndarray
    map_y: np.ndarray
    mask: np.ndarray

    def residual(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Motion-compensated change ``current - warp(previous)`` on the mask.

        Both frames are ``(H, W)`` float64; the result is a 1-D float64 array in gray levels.
        """
        warped = cv2.remap(previous, self.map_x, self.map_y, interpolation=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        return (current - warped)[self.mask]

    def spatial_scale_sum(self, current: np.ndarray) -> float:
        """Sum over the mask of the mean absolute horizontal and vertical neighbour difference."""
        dx = np.zeros_like(current)
        dy = np.zeros_like(current)
        dx[:, :-1] = np.abs(np.diff(current, axis=1))
        dy[:-1, :] = np.abs(np.diff(current, axis=0))
        return float(((dx + dy) * 0.5)[self.mask].sum())


class MotionEstimator:
    """Dense flow between consecutive source frames with a forward-backward occlusion mask.

    Args:
        preset: OpenCV DIS preset, one of :data:`FLOW_PRESETS` (``medium`` default).

    Raises:
        ConfigError: If the preset is unknown.
    """

    #: forward-backward consistency thresholds of Ruder et al. (squared pixels).
    CONSISTENCY_RELATIVE = 0.01
    CONSISTENCY_ABSOLUTE = 0.5

    def __init__(self, preset: str = "medium") -> None:
        if preset not in FLOW_PRESETS:
            raise ConfigError(f"flow preset must be one of {sorted(FLOW_PRESETS)}, got {preset!r}")
        self.preset = preset
        self._flow = cv2.DISOpticalFlow_create(FLOW_PRESETS[preset])

    def __call__(self, guide_previous: np.ndarray, guide: np.ndarray) -> SourceMotion:
        """Motion from frame ``t`` back to frame ``t-1``.

        Args:
            guide_previous: ``(H, W)`` uint8 source guide of frame ``t-1``.
            guide: ``(H, W)`` uint8 source guide of frame ``t``.

        Returns:
            The sampling maps and the consistency mask.
        """
        backward = self._flow.calc(guide, guide_previous, None)
        forward = self._flow.calc(guide_previous, guide, None)
        height, width = guide.shape
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32),
                                     np.arange(height, dtype=np.float32))
        map_x = grid_x + backward[..., 0]
        map_y = grid_y + backward[..., 1]
        forward_there = cv2.remap(forward, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        disagreement = np.sum((backward + forward_there) ** 2, axis=2)
        magnitude = np.sum(backward ** 2, axis=2) + np.sum(forward_there ** 2, axis=2)
        consistent = disagreement <= (self.CONSISTENCY_RELATIVE * magnitude
                                      + self.CONSISTENCY_ABSOLUTE)
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        return SourceMotion(map_x, map_y, consistent & inside)


def source_guide(ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """The flow guide ``round((ir + vi) / 2)`` as ``(H, W)`` uint8 (both sources' structure)."""
    return np.clip(np.round((ir + vi) * 0.5), 0, 255).astype(np.uint8)


@dataclass
class _Totals:
    """Running sums of one video."""

    absolute_residual: float = 0.0
    spatial_scale: float = 0.0
    mean_residuals: list[float] = field(default_factory=list)


class TemporalStabilityMeter:
    """Measure the temporal stability of several fused videos of one source sequence at once.

    Frames are fed one time step at a time (nothing but the previous frame is kept), and the
    motion is estimated once per step for all videos. The two sources are measured too, as
    reference rows (:data:`SOURCE_LABELS`).

    Example::

        meter = TemporalStabilityMeter(["lutfuse", "average"])
        for ir, vi, fused, average in frames:
            meter.add(ir, vi, {"lutfuse": fused, "average": average})
        scores = meter.scores()          # {"lutfuse": TemporalScores, ..., "source: ir": ...}

    Args:
        labels: names of the fused videos; every :meth:`add` call gives one frame of each.
        preset: DIS flow preset (see :class:`MotionEstimator`).

    Raises:
        ConfigError: If a label repeats or is a source label, or the preset is unknown.
    """

    def __init__(self, labels: Sequence[str], preset: str = "medium") -> None:
        labels = list(labels)
        if len(set(labels)) != len(labels):
            raise ConfigError(f"temporal stability labels must be distinct, got {labels}")
        reserved = set(labels) & set(SOURCE_LABELS)
        if reserved:
            raise ConfigError(f"labels {sorted(reserved)} are reserved for the source rows")
        self.labels = labels
        self._motion = MotionEstimator(preset)
        self._totals = {label: _Totals() for label in [*labels, *SOURCE_LABELS]}
        self._previous: dict[str, np.ndarray] | None = None
        self._previous_guide: np.ndarray | None = None
        self._pairs = 0
        self._valid = 0.0
        self._pixels = 0

    @property
    def frame_pairs(self) -> int:
        """Consecutive frame pairs measured so far."""
        return self._pairs

    def add(self, ir: np.ndarray, vi: np.ndarray, fused: Mapping[str, np.ndarray]) -> None:
        """Add the next time step.

        Args:
            ir: ``(H, W)`` infrared frame, gray levels 0..255 (as given to the fusion).
            vi: ``(H, W)`` visible gray (luminance) frame, 0..255.
            fused: ``{label: (H, W) fused gray frame, 0..255}`` for every label.

        Raises:
            InputError: If a frame is not a finite 2-D image, the shapes differ (also from
                the previous step), or a label is missing or unknown.
        """
        if set(fused) != set(self.labels):
            raise InputError(f"expected fused frames for {sorted(self.labels)}, got "
                             f"{sorted(fused)}")
        frames = {SOURCE_LABELS[0]: as_gray_image(ir, "ir"),
                  SOURCE_LABELS[1]: as_gray_image(vi, "vi")}
        frames.update({label: as_gray_image(image, f"fused {label!r}")
                       for label, image in fused.items()})
        shape = frames[SOURCE_LABELS[0]].shape
        wrong = {label: image.shape for label, image in frames.items() if image.shape != shape}
        if wrong:
            raise InputError(f"all frames of a time step must be {shape}, got {wrong}")
        if self._previous is not None and self._previous[SOURCE_LABELS[0]].shape != shape:
            raise InputError(f"frame size changed from {self._previous[SOURCE_LABELS[0]].shape} "
                             f"to {shape} within the sequence")
        guide = source_guide(frames[SOURCE_LABELS[0]], frames[SOURCE_LABELS[1]])
        if self._previous is not None:
            self._measure(self._motion(self._previous_guide, guide), frames)
        self._previous, self._previous_guide = frames, guide

    def _measure(self, motion: SourceMotion, frames: dict[str, np.ndarray]) -> None:
        count = int(motion.mask.sum())
        self._pairs += 1
        self._valid += count / motion.mask.size
        self._pixels += count
        for label, current in frames.items():
            totals = self._totals[label]
            residual = motion.residual(self._previous[label], current)
            totals.absolute_residual += float(np.abs(residual).sum())
            totals.spatial_scale += motion.spatial_scale_sum(current)
            totals.mean_residuals.append(float(residual.mean()) if count else 0.0)

    def scores(self) -> dict[str, TemporalScores]:
        """Scores of every fused video, then of the two sources.

        Returns:
            ``{label: TemporalScores}``; all NaN when fewer than two frames were added or no
            pixel was ever inside the motion mask.
        """
        sources = [np.asarray(self._totals[label].mean_residuals) for label in SOURCE_LABELS]
        result = {}
        for label, totals in self._totals.items():
            flicker = (math.nan if label in SOURCE_LABELS
                       else _flicker(np.asarray(totals.mean_residuals), sources,
                                     totals.spatial_scale / max(self._pixels, 1)))
            result[label] = TemporalScores(
                tRWE=_ratio(totals.absolute_residual, totals.spatial_scale, self._pixels),
                tWE=(totals.absolute_residual / self._pixels if self._pixels else math.nan),
                tFlicker=flicker, frame_pairs=self._pairs,
                valid_fraction=self._valid / self._pairs if self._pairs else math.nan)
        return result


def _ratio(numerator: float, denominator: float, pixels: int) -> float:
    """``numerator / denominator`` with 0/0 = 0 (a flat, static video is perfectly stable)."""
    if not pixels:
        return math.nan
    if denominator <= 0.0:
        return 0.0 if numerator <= 1e-9 * pixels else math.inf
    return numerator / denominator


def _flicker(fused_means: np.ndarray, source_means: list[np.ndarray], scale: float) -> float:
    """RMS of the fused mean changes not explained by a least-squares blend of the sources'."""
    if len(fused_means) < MIN_FLICKER_PAIRS:
        return math.nan
    design = np.stack(source_means, axis=1)
    weights, *_ = np.linalg.lstsq(design, fused_means, rcond=None)
    unexplained = float(np.sqrt(np.mean((fused_means - design @ weights) ** 2)))
    return _ratio(unexplained, scale, 1)


def temporal_stability(fused: Iterable[np.ndarray], ir: Iterable[np.ndarray],
                       vi: Iterable[np.ndarray], preset: str = "medium") -> TemporalScores:
    """Temporal stability of one fused gray video against its sources.

    Args:
        fused: fused frames, each ``(H, W)`` gray 0..255, in time order.
        ir: infrared frames, same count and shape.
        vi: visible gray frames, same count and shape.
        preset: DIS flow preset.

    Returns:
        The fused video's :class:`TemporalScores` (see the module doc).

    Raises:
        InputError: If the three sequences differ in length or a frame is invalid.
    """
    meter = TemporalStabilityMeter(["fused"], preset)
    sentinel = object()
    for frame_fused, frame_ir, frame_vi in _zip_exact(fused, ir, vi, sentinel):
        meter.add(frame_ir, frame_vi, {"fused": frame_fused})
    return meter.scores()["fused"]


def _zip_exact(fused: Iterable, ir: Iterable, vi: Iterable, sentinel: object):
    """``zip`` that raises InputError when the three sequences differ in length."""
    iterators = [iter(fused), iter(ir), iter(vi)]
    index = 0
    while True:
        items = [next(iterator, sentinel) for iterator in iterators]
        ended = [item is sentinel for item in items]
        if all(ended):
            return
        if any(ended):
            names = [name for name, done in zip(("fused", "ir", "vi"), ended) if done]
            raise InputError(f"sequences differ in length: {', '.join(names)} ended after "
                             f"{index} frame(s)")
        index += 1
        yield items

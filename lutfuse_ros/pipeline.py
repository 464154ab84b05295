"""The ROS-free fusion pipeline: uint8 arrays in, uint8 array out.

``visible (H,W,3 BGR|RGB or H,W gray) + thermal (h,w uint8|uint16)``
-> validate -> thermal normalisation -> alignment -> visible luminance Y
-> backend (fused luminance) -> output mapping -> colour merge -> ``(H,W,3)`` or ``(H,W)`` uint8.

The colour merge keeps the visible Cb and Cr (full-range YCbCr), which amounts to adding
``fused - Y`` to every RGB channel (:func:`lutfuse_ros.colour.replace_luma`), so chroma planes
are never materialised. Every backend receives the aligned frame as one
:class:`~lutfuse_ros.backends.frame_inputs.FrameInputs` (``infer_frame``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lutfuse_ros.artifacts import Artifact, load_artifact
from lutfuse_ros.backends import InferenceBackend, create_backend
from lutfuse_ros.backends.frame_inputs import FrameInputs
from lutfuse_ros.colour import luma_plane, replace_luma, to_uint8
from lutfuse_ros.errors import BackendError, ConfigError, InputError
from lutfuse_ros.preprocessing import AlignmentConfig, Aligner, ThermalConfig, ThermalNormaliser

COLOUR_ORDERS = ("bgr", "rgb")
OUTPUT_KINDS = ("colour", "mono")
DEFAULT_ARTIFACT = "lutfuse-mmlut"


@dataclass
class PipelineConfig:
    """Everything about the pipeline except the model and the runtime.

    Attributes:
        colour_order: channel order of colour visible input and of colour output.
        output: ``colour`` (visible chroma restored; gray visible input gives gray-looking
            colour) or ``mono`` (the fused luminance as one channel).
        rounding: ``round`` or ``truncate`` (the official save step) for the uint8 output.
        luma_mapping: override of the artifact's output mapping (``none``, ``clamp``,
            ``minmax``); None uses the artifact's. ``minmax`` stretches each frame and
            flickers on video: it exists to reproduce official still-image outputs.
        thermal: thermal normalisation settings.
        alignment: sensor alignment settings.
    """

    colour_order: str = "bgr"
    output: str = "colour"
    rounding: str = "round"
    luma_mapping: str | None = None
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)

    def __post_init__(self) -> None:
        if self.colour_order not in COLOUR_ORDERS:
            raise ConfigError(
                f"colour_order must be one of {COLOUR_ORDERS}, got {self.colour_order!r}")
        if self.output not in OUTPUT_KINDS:
            raise ConfigError(f"output must be one of {OUTPUT_KINDS}, got {self.output!r}")
        if self.rounding not in ("round", "truncate"):
            raise ConfigError(f"rounding must be 'round' or 'truncate', got {self.rounding!r}")
        if self.luma_mapping not in (None, "none", "clamp", "minmax"):
            raise ConfigError(
                f"luma_mapping must be none, clamp or minmax, got {self.luma_mapping!r}")


@dataclass
class StageTimings:
    """Milliseconds spent in each stage of one :meth:`FusionPipeline.fuse_timed` call."""

    preprocess_ms: float = 0.0
    model_ms: float = 0.0
    postprocess_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Sum of the stages."""
        return self.preprocess_ms + self.model_ms + self.postprocess_ms


class FusionPipeline:
    """Fuse registered visible/thermal pairs with one model on one backend.

    Args:
        backend: the inference backend (owns the model).
        config: pre- and post-processing settings.
    """

    def __init__(self, backend: InferenceBackend, config: PipelineConfig | None = None) -> None:
        self.backend = backend
        self.config = config or PipelineConfig()
        self.normalise_thermal = ThermalNormaliser(self.config.thermal)
        self.align = Aligner(self.config.alignment)
        self.luma_mapping = self.config.luma_mapping or backend.artifact.output_mapping

    @classmethod
    def from_artifact(cls, artifact: str | Artifact = DEFAULT_ARTIFACT, backend: str = "torch",
                      device: str = "cpu", config: PipelineConfig | None = None,
                      **backend_options) -> "FusionPipeline":
        """Build a pipeline from an artifact (path, shipped name or loaded) and a backend name."""
        loaded = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
        return cls(create_backend(backend, loaded, device, **backend_options), config)

    @property
    def artifact(self) -> Artifact:
        """The model artifact the backend runs."""
        return self.backend.artifact

    def fuse(self, visible: np.ndarray, thermal: np.ndarray) -> np.ndarray:
        """Fuse one pair.

        Args:
            visible: ``(H, W, 3)`` uint8 in ``config.colour_order``, or ``(H, W)`` uint8 gray.
            thermal: ``(h, w)`` uint8 or uint16 (radiometric counts); same size as the
                visible image unless an alignment mode is configured.

        Returns:
            ``(H', W', 3)`` uint8 in ``config.colour_order`` (``colour`` output) or ``(H', W')``
            uint8 (``mono``), where ``H' x W'`` is the aligned size (the visible size unless
            ``resize_visible`` or a crop is configured).

        Raises:
            InputError: wrong dtype, shape, channel count, empty image or size mismatch.
            BackendError: the backend failed or produced non-finite values.
        """
        return self.fuse_timed(visible, thermal)[0]

    def fuse_timed(self, visible: np.ndarray, thermal: np.ndarray,
                   ) -> tuple[np.ndarray, StageTimings]:
        """Like :meth:`fuse`, also returning per-stage milliseconds."""
        timings = StageTimings()
        start = time.perf_counter()
        validate_visible(visible)
        validate_thermal(thermal)
        visible, thermal8 = self.align(visible, self.normalise_thermal(thermal))
        visible, thermal8 = np.ascontiguousarray(visible), np.ascontiguousarray(thermal8)
        order = self.config.colour_order
        luma = luma_plane(visible, order)
        frame = FrameInputs(visible, order, thermal8, luma)
        after_pre = time.perf_counter()
        fused_luma = self.backend.infer_frame(frame)
        after_model = time.perf_counter()
        if fused_luma.shape != luma.shape:
            raise BackendError(f"backend {self.backend.name} returned shape {fused_luma.shape}, "
                               f"expected {luma.shape}")
        if not np.isfinite(fused_luma.sum()) and not np.isfinite(fused_luma).all():
            raise BackendError(f"backend {self.backend.name} produced NaN/inf values "
                               f"({int((~np.isfinite(fused_luma)).sum())} pixels)")
        fused_luma = map_luma(fused_luma, self.luma_mapping)
        if self.config.output == "mono":
            result = to_uint8(fused_luma, self.config.rounding)
        else:
            result = replace_luma(visible, luma, fused_luma, order, self.config.rounding)
        end = time.perf_counter()
        timings.preprocess_ms = (after_pre - start) * 1e3
        timings.model_ms = (after_model - after_pre) * 1e3
        timings.postprocess_ms = (end - after_model) * 1e3
        return result, timings

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()


def map_luma(luma: np.ndarray, mapping: str) -> np.ndarray:
    """Apply an artifact output mapping to a raw fused luminance.

    Args:
        luma: ``(H, W)`` float32 raw model output.
        mapping: ``none`` (keep; the colour merge clamps RGB), ``clamp`` (to [0, 1]) or
            ``minmax`` (stretch this frame to [0, 1], the official MMDRFuse save step).

    Returns:
        ``(H, W)`` float32.
    """
    if mapping == "none":
        return luma
    if mapping == "clamp":
        return np.clip(luma, 0.0, 1.0)
    if mapping == "minmax":
        low, high = float(luma.min()), float(luma.max())
        if high <= low:
            return np.zeros_like(luma)
        return (luma - np.float32(low)) * np.float32(1.0 / (high - low))
    raise ConfigError(f"unknown luma mapping {mapping!r}")


def validate_visible(visible: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``visible`` is a non-empty uint8 gray or 3-channel image."""
    if not isinstance(visible, np.ndarray):
        raise InputError(f"visible image must be a numpy array, got {type(visible).__name__}")
    if visible.dtype != np.uint8:
        raise InputError(f"visible image must be uint8, got {visible.dtype}")
    if visible.ndim == 3 and visible.shape[2] != 3:
        raise InputError(f"visible image must have 3 channels (or be 2-D gray), got shape "
                         f"{visible.shape}")
    if visible.ndim not in (2, 3):
        raise InputError(f"visible image must be HxW or HxWx3, got shape {visible.shape}")
    if visible.shape[0] < 2 or visible.shape[1] < 2:
        raise InputError(f"visible image is empty or smaller than 2x2: shape {visible.shape}")


def validate_thermal(thermal: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``thermal`` is a non-empty 2-D uint8/uint16 image."""
    if not isinstance(thermal, np.ndarray):
        raise InputError(f"thermal image must be a numpy array, got {type(thermal).__name__}")
    if thermal.dtype not in (np.uint8, np.uint16):
        raise InputError(f"thermal image must be uint8 or uint16, got {thermal.dtype}")
    if thermal.ndim != 2:
        raise InputError(f"thermal image must be 2-D (H, W), got shape {thermal.shape}")
    if thermal.shape[0] < 2 or thermal.shape[1] < 2:
        raise InputError(f"thermal image is empty or smaller than 2x2: shape {thermal.shape}")

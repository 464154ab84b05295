"""Loading a model for the node and proving it before it is swapped in.

:func:`build_pipeline` turns settings into a :class:`~lutfuse_ros.pipeline.FusionPipeline`
(artifact + backend). :func:`load_step` does the same for a replacement model and proves it
works with a warm-up fuse (the last pair the node fused, or a synthetic pair of a size the
alignment settings accept) before anything is swapped: a missing, truncated or corrupt file,
a backend that cannot run it, or a model whose output is NaN/inf is refused with a
:class:`~lutfuse_ros.errors.ConfigError` naming the reason, and the old model keeps running.
The node swaps the proven step into its :class:`~lutfuse_ros.stream.step_slot.StepSlot`.
This module imports no ROS package: errors name the node's parameters.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.backends import create_backend
from lutfuse_ros.errors import ArtifactError, ConfigError, LutfuseError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.settings.node_settings import NodeSettings
from lutfuse_ros.stream.camera_frame import CameraFrame
from lutfuse_ros.stream.fusion_step import FusionStep

#: Parameters that choose the model and its runtime: setting one while the node is
#: configured loads and swaps the model at once (the others: lutfuse_ros.ros.live_params).
MODEL_PARAMETERS = ("artifact", "backend", "device", "backend_threads", "backend_options")
_WARM_UP_SIZE = (64, 48)  # width, height of the synthetic warm-up pair


def build_pipeline(settings: NodeSettings) -> FusionPipeline:
    """Load the artifact and create the backend the settings name.

    Raises:
        ConfigError: the artifact cannot be loaded or the backend/device cannot run it; the
            message names the parameter.
    """
    try:
        artifact = load_artifact(settings.artifact)
    except ArtifactError as error:
        raise ConfigError(f"parameter 'artifact' = {settings.artifact!r}: {error}") from None
    try:
        backend = create_backend(settings.backend, artifact, settings.device,
                                 **settings.backend_options)
    except (LutfuseError, TypeError) as error:
        raise ConfigError(f"parameters 'backend' = {settings.backend!r}, 'device' = "
                          f"{settings.device!r}, 'backend_options' = "
                          f"{dict(settings.backend_options)}: {error}") from None
    return FusionPipeline(backend, settings.pipeline)


def describe_model(step: FusionStep) -> str:
    """``<name> (<family>, <n> parameters) on <backend>``, for logs and replies."""
    pipeline = step.pipeline
    manifest = pipeline.artifact.manifest
    return (f"{pipeline.artifact.name} ({manifest.get('family')}, "
            f"{manifest.get('parameters')} parameters) on {pipeline.backend.describe()}")


def hardware_id(step: FusionStep) -> str:
    """The diagnostics hardware id: model name and backend."""
    return f"{step.pipeline.artifact.name} on {step.pipeline.backend.describe()}"


def model_settings(current: NodeSettings, candidate: NodeSettings) -> NodeSettings:
    """``current`` with the model and runtime fields of ``candidate``."""
    return replace(current, artifact=candidate.artifact, backend=candidate.backend,
                   device=candidate.device, backend_options=candidate.backend_options)


def warm_up_pair(settings: NodeSettings) -> tuple[CameraFrame, CameraFrame]:
    """A synthetic ``bgr8`` + ``mono8`` pair of one size that the alignment settings accept.

    Returns:
        ``(visible, thermal)`` frames, at least 64x48 and large enough for the crop.
    """
    width, height = _WARM_UP_SIZE
    crop = settings.pipeline.alignment.crop
    if crop is not None:
        width, height = max(width, crop[0] + crop[2]), max(height, crop[1] + crop[3])
    ramp_x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ramp_y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    visible = np.stack([ramp_x + 0 * ramp_y, ramp_y + 0 * ramp_x,
                        (ramp_x + ramp_y) / 2], axis=-1).astype(np.uint8)
    thermal = (255 - (ramp_x + ramp_y) / 2).astype(np.uint8)
    return (CameraFrame.from_array("visible", visible, "bgr8"),
            CameraFrame.from_array("thermal", thermal, "mono8"))


def make_step(settings: NodeSettings, pipeline: FusionPipeline) -> FusionStep:
    """The node's fusion step around ``pipeline`` with the output settings."""
    return FusionStep(pipeline, settings.output)


def load_step(settings: NodeSettings,
              sample: tuple[CameraFrame, CameraFrame] | None = None) -> FusionStep:
    """Build a fusion step for ``settings`` and prove it with one warm-up fuse.

    Args:
        settings: the node settings with the model to load.
        sample: ``(visible, thermal)`` frames to warm up with (the last pair the node
            fused); a synthetic pair when None.

    Returns:
        The ready step.

    Raises:
        ConfigError: loading failed, or the warm-up fuse raised (the message says which);
            nothing stays open.
    """
    pipeline = build_pipeline(settings)
    step = make_step(settings, pipeline)
    visible, thermal = sample or warm_up_pair(settings)
    try:
        step.fuse(visible, thermal, lambda: 0)
    except Exception as error:  # any failure of a new model must leave the old one running
        pipeline.close()
        kind = "" if isinstance(error, LutfuseError) else f"{type(error).__name__}: "
        raise ConfigError(f"warm-up fuse with {describe_model(step)} failed: {kind}"
                          f"{error}") from None
    return step

"""Loading a model for the node and swapping it in while the node runs.

:func:`build_pipeline` turns settings into a :class:`~lutfuse_ros.pipeline.FusionPipeline`
(artifact + backend). :func:`load_step` does the same for a replacement model and proves it
works with a warm-up fuse (the last pair the node fused, or a synthetic pair of a size the
alignment settings accept) before anything is swapped: a missing, truncated or corrupt file,
a backend that cannot run it, or a model whose output is NaN/inf is refused with a
:class:`~lutfuse_ros.errors.ConfigError` naming the reason, and the old model keeps running.

:class:`StepSlot` holds the step the worker uses. The worker fuses inside
:meth:`StepSlot.use`; :meth:`StepSlot.swap` replaces the reference at once, without waiting
for the pair in progress, so a pair is fused entirely by the old or entirely by the new model,
and the old one is retired (closed) only once no pair uses it any more.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np
from sensor_msgs.msg import Image

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.backends import create_backend
from lutfuse_ros.errors import ArtifactError, ConfigError, LutfuseError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.conversions import ImageConverter, array_to_image
from lutfuse_ros.ros.fusion_step import FusionStep
from lutfuse_ros.settings.node_settings import NodeSettings

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


def warm_up_pair(settings: NodeSettings) -> tuple[Image, Image]:
    """A synthetic ``bgr8`` + ``mono8`` pair of one size that the alignment settings accept.

    Returns:
        ``(visible, thermal)`` messages, at least 64x48 and large enough for the crop.
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
    return array_to_image(visible, "bgr8"), array_to_image(thermal, "mono8")


def make_step(settings: NodeSettings, pipeline: FusionPipeline) -> FusionStep:
    """The node's fusion step around ``pipeline``: output settings and image converter."""
    return FusionStep(pipeline, settings.output,
                      ImageConverter(prefer_cv_bridge=settings.use_cv_bridge))


def load_step(settings: NodeSettings, sample: tuple[Image, Image] | None = None) -> FusionStep:
    """Build a fusion step for ``settings`` and prove it with one warm-up fuse.

    Args:
        settings: the node settings with the model to load.
        sample: ``(visible, thermal)`` messages to warm up with (the last pair the node
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
        step.fuse(visible, thermal, _zero_time)
    except Exception as error:  # any failure of a new model must leave the old one running
        pipeline.close()
        kind = "" if isinstance(error, LutfuseError) else f"{type(error).__name__}: "
        raise ConfigError(f"warm-up fuse with {describe_model(step)} failed: {kind}"
                          f"{error}") from None
    return step


def _zero_time() -> Any:
    from builtin_interfaces.msg import Time

    return Time()


class StepSlot:
    """The current fusion step, swappable while a worker thread uses it.

    A swap never waits for the pair in progress: it installs the new step at once (the next
    pair uses it) and retires the previous one (``retire(previous)``, for example closing its
    backend) as soon as no pair uses that step's backend any more, on the thread that
    finishes the last such pair. Steps built by a live parameter change share their
    predecessor's backend, so in-use counts are kept per backend.

    Args:
        step: the initial step.
    """

    def __init__(self, step: FusionStep) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._users: dict[int, int] = {}  # id(backend) -> pairs in progress with it
        self._retiring: dict[int, tuple[FusionStep, Callable[[FusionStep], None]]] = {}

    @property
    def step(self) -> FusionStep:
        """The current fusion step, to read its settings (fuse through :meth:`use`)."""
        return self._step

    @contextmanager
    def use(self) -> Iterator[FusionStep]:
        """Hold the current step for one pair; a swap meanwhile retires it after the block."""
        with self._lock:
            step = self._step
            key = id(step.pipeline.backend)
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield step
        finally:
            with self._lock:
                self._users[key] -= 1
                retiring = None
                if self._users[key] == 0:
                    del self._users[key]
                    retiring = self._retiring.pop(key, None)
            if retiring is not None:
                retiring[1](retiring[0])

    def swap(self, step: FusionStep,
             retire: Callable[[FusionStep], None] | None = None) -> FusionStep:
        """Install ``step`` now and retire the previous step once no pair uses its backend.

        ``retire`` is not called when ``step`` runs on the previous step's backend.

        Returns:
            The previous step (possibly still in use by the pair in progress).
        """
        with self._lock:
            previous, self._step = self._step, step
            key = id(previous.pipeline.backend)
            if retire is None or key == id(step.pipeline.backend):
                return previous
            in_use = self._users.get(key, 0) > 0
            if in_use:
                self._retiring[key] = (previous, retire)
        if not in_use:
            retire(previous)
        return previous

"""Which parameter changes apply while the node runs, and how.

Three kinds of parameters (by name):

- **model** (:data:`~lutfuse_ros.ros.model_loading.MODEL_PARAMETERS`): a new model is loaded and
  warmed up off the executor, then swapped in (or the change is refused);
- **live** (:data:`LIVE_PREFIXES`: ``sync.*``, ``output.*``, ``thermal.*``, ``alignment.*``,
  ``diagnostics.*``): no new model is needed; the change is validated with the same messages
  as at configure (:func:`~lutfuse_ros.settings.node_settings.parse_settings` on all current
  values) and applied at once: the next pair uses the new settings, the pair in progress
  finishes with the old ones, frames waiting for a partner are re-paired;
- **deferred** (everything else: ``use_cv_bridge``, ``qos.*``, ``input.*``): they change
  subscriptions or the converter and take effect at the next configure (``autostart`` is read
  once, by ``main`` at start).

:func:`settings_to_apply` builds the settings the node runs with after a change;
:func:`restep` builds the fusion step for them around the running backend (no reload).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.model_loading import MODEL_PARAMETERS
from lutfuse_ros.settings.node_settings import NodeSettings
from lutfuse_ros.stream.fusion_step import FusionStep

#: Parameter name prefixes that apply while the node runs.
LIVE_PREFIXES = ("sync.", "output.", "thermal.", "alignment.", "diagnostics.")
#: ``NodeSettings`` fields that only the next configure changes.
DEFERRED_FIELDS = ("use_cv_bridge", "qos", "input")
_MODEL_FIELDS = ("artifact", "backend", "device", "backend_options")


def is_live(name: str) -> bool:
    """Whether a parameter applies while the node runs, without a new model."""
    return name.startswith(LIVE_PREFIXES)


def deferred(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that take effect only at the next configure."""
    return sorted(name for name in names if not is_live(name) and name not in MODEL_PARAMETERS)


def settings_to_apply(current: NodeSettings, candidate: NodeSettings, *,
                      new_model: bool) -> NodeSettings:
    """Build the settings to run with after a change.

    Returns:
        ``candidate``, except the deferred fields (and, without a new model, the model
        fields), which keep their ``current`` values.
    """
    kept = DEFERRED_FIELDS + (() if new_model else _MODEL_FIELDS)
    return replace(candidate, **{field: getattr(current, field) for field in kept})


def restep(step: FusionStep, settings: NodeSettings) -> FusionStep:
    """A fusion step with ``settings``' output and pipeline settings on ``step``'s backend.

    Building it costs no model load (the backend is shared, so retiring the old step must not
    close it).
    """
    pipeline = FusionPipeline(step.pipeline.backend, settings.pipeline)
    return FusionStep(pipeline, settings.output)

"""Model families as plug-ins: one folder per family and this one registry listing them.

A family's folder holds everything about it::

    families/<family>/model.py           the reference PyTorch module (source of truth)
                      fast_kernel.py     fast CPU inference the torch backend uses (optional)
                      baseline.py        the official approach, for ``lutfuse bench`` (optional)
                      importer.py        the official checkpoint importer (optional)
                      training_stage.py  its ``lutfuse train <stage>`` stage (optional)

plus the family's own helpers (the MM-LUT's context networks, lattice kernels and ONNX
look-up graphs). :data:`FAMILIES` names them by ``"module:attribute"`` strings, imported only
when used, so listing the families costs nothing. Adding a family means adding a folder and
one :class:`ModelFamily` entry here; the artifact loader, the torch backend, ``lutfuse bench``,
``lutfuse import``, ``lutfuse train`` and the ONNX export all read this table.

Every reference module takes ``(visible_rgb, infrared)`` on [0, 1] and returns a fused
luminance ``(N, 1, H, W)``; shared model-space features are in :mod:`.features`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from lutfuse_ros.errors import ArtifactError


@dataclass(frozen=True)
class ModelFamily:
    """One model family and where each of its parts lives (``"module:attribute"``).

    Attributes:
        name: the family name stored in artifact manifests (the model class's ``family``).
        model: the reference ``nn.Module`` class, built from a manifest's ``architecture``.
        fast_kernel: constructor ``(module, torch dtype) -> FastModel`` of the fast CPU path;
            empty: the torch backend runs the reference module.
        baseline: class ``(module)`` with ``fuse(bgr_u8, infrared_u8) -> bgr_u8`` computed the
            official way (``lutfuse bench``); empty: none.
        importer: function reading the official checkpoint files -> ``(module, manifest)``.
        stage: the ``lutfuse train`` stage name that trains this family (empty: none).
        training_stage: the stage class.
        fp16_scopes: ONNX node-name prefixes that may run in FP16 in a TensorRT FP16 engine.
    """

    name: str
    model: str
    fast_kernel: str = ""
    baseline: str = ""
    importer: str = ""
    stage: str = ""
    training_stage: str = ""
    fp16_scopes: tuple[str, ...] = ()

    def part(self, attribute: str) -> Any:
        """Import one part by field name (``"model"``, ``"fast_kernel"`` ...); None if unset.

        Raises:
            ArtifactError: the reference cannot be imported (a broken install).
        """
        reference = getattr(self, attribute)
        if not reference:
            return None
        module_name, _, name = reference.partition(":")
        try:
            return getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as error:
            raise ArtifactError(f"model family {self.name!r}: cannot import its {attribute} "
                                f"{reference} ({error})") from error


_PACKAGE = "lutfuse_ros.families"
#: Every model family, in the order ``lutfuse train`` lists the stages.
FAMILIES: tuple[ModelFamily, ...] = (
    ModelFamily("teacher", f"{_PACKAGE}.teacher.model:FusionTeacher",
                importer=f"{_PACKAGE}.teacher.importer:import_mmdrfuse_teacher",
                stage="teacher", training_stage=f"{_PACKAGE}.teacher.training_stage:TeacherStage",
                fp16_scopes=("/model/",)),
    ModelFamily("mm_lut", f"{_PACKAGE}.mmlut.model:MMLUT",
                fast_kernel=f"{_PACKAGE}.mmlut.fast_kernel:FastMMLUT",
                baseline=f"{_PACKAGE}.mmlut.baseline:OfficialApproachMMLUT",
                importer=f"{_PACKAGE}.mmlut.importer:import_lutfuse",
                stage="lut", training_stage=f"{_PACKAGE}.mmlut.training_stage:LutStage",
                fp16_scopes=("/context/",)),
    ModelFamily("mini", f"{_PACKAGE}.mini.model:MiniFusionNet",
                fast_kernel=f"{_PACKAGE}.mini.fast_kernel:FastMini",
                baseline=f"{_PACKAGE}.mini.baseline:OfficialApproachMini",
                importer=f"{_PACKAGE}.mini.importer:import_mmdrfuse",
                stage="mini", training_stage=f"{_PACKAGE}.mini.training_stage:MiniStage"),
)
#: Family name -> :class:`ModelFamily`.
MODEL_FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {family.name: family for family in FAMILIES})
#: ``lutfuse train`` stage name -> the family it trains.
STAGE_FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {family.stage: family for family in FAMILIES if family.stage})


def get_family(name: str) -> ModelFamily:
    """The registered family ``name``.

    Raises:
        ArtifactError: no such family; the message lists the known ones.
    """
    try:
        return MODEL_FAMILIES[name]
    except KeyError:
        raise ArtifactError(f"unknown model family {name!r}; known: "
                            f"{', '.join(sorted(MODEL_FAMILIES))}") from None


def family_of(model: Any) -> ModelFamily | None:
    """The family of a reference module (by its ``family`` attribute), or None."""
    return MODEL_FAMILIES.get(getattr(model, "family", ""))


def build_model(family: str, architecture: dict) -> Any:
    """Instantiate a family's reference module from its manifest description.

    Args:
        family: a key of :data:`MODEL_FAMILIES`.
        architecture: constructor keyword arguments.

    Raises:
        ArtifactError: unknown family or arguments the class does not accept.
    """
    model_class = get_family(family).part("model")
    try:
        return model_class(**architecture)
    except (TypeError, ValueError) as error:
        raise ArtifactError(
            f"invalid architecture for {family!r}: {architecture} ({error})") from None


def build_baseline(model: Any) -> Any:
    """The official-approach baseline of ``model``'s family, or None where there is none."""
    family = family_of(model)
    baseline = family.part("baseline") if family is not None else None
    return None if baseline is None else baseline(model)


__all__ = ["FAMILIES", "MODEL_FAMILIES", "STAGE_FAMILIES", "ModelFamily", "build_baseline",
           "build_model", "family_of", "get_family"]

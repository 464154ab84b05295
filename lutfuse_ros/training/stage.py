"""What the training engine needs from each stage (teacher, lut, mini).

Also the MMDRFuse objective shared by the teacher and mini-model stages.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

import torch
from torch import nn

from lutfuse_ros.families.features import rgb_to_luma
from lutfuse_ros.training.config import FusionLossConfig, TrainingConfig, resolve_path
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.distributed import DistContext
from lutfuse_ros.training.losses import (
    digestible_distillation_loss,
    gradient_max_loss,
    intensity_max_loss,
    load_vgg19,
    perceptual_max_loss,
)
from lutfuse_ros.training.refresh import RefreshMemory, refresh_loss, score_outputs

LOG = logging.getLogger(__name__)


class Stage(ABC):
    """One kind of training run.

    The engine calls :meth:`prepare` once (after the frames exist), then
    :meth:`training_step` per batch (unless :attr:`trainable` is False), and finally
    :meth:`provenance` for the artifact manifest.

    Args:
        config: the run's configuration.
        device: the torch device of this process.
        dist: the process group context.
    """

    #: the model family's human description (manifest ``description``).
    description: str = ""
    #: crops carry the teacher reference.
    needs_reference: bool = False

    def __init__(self, config: TrainingConfig, device: torch.device, dist: DistContext) -> None:
        self.config = config
        self.device = device
        self.dist = dist
        self.model: nn.Module | None = None
        #: the module the engine calls (and wraps in DistributedDataParallel); None: ``model``.
        self.train_module: nn.Module | None = None

    @property
    def trainable(self) -> bool:
        """False for stages that build their model without gradient steps."""
        return True

    @abstractmethod
    def prepare(self, store: FrameStore, num_crops: int) -> None:
        """Build the model (on ``self.device``) and anything it needs from the data."""

    def parameter_groups(self) -> list[dict]:
        """Optimizer parameter groups (default: every parameter at ``train.lr``)."""
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    @abstractmethod
    def training_step(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """Losses of one batch; ``"loss"`` is the total to minimise.

        Args:
            model: ``self.model`` or its DistributedDataParallel wrapper (call this one).
            batch: a collated :class:`~lutfuse_ros.training.datasets.CropDataset` batch on
                ``self.device``.
        """

    def extra_state(self) -> dict:
        """Stage state for checkpoints beyond model and optimizer (e.g. refresh memory)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore :meth:`extra_state`."""

    def provenance(self) -> dict:
        """Stage-specific manifest provenance, such as the teacher and the mode."""
        return {}


class ObjectiveStage(Stage):
    """A stage trained with the MMDRFuse :class:`FusionObjective` (teacher and mini-model).

    Subclasses set ``self.objective`` in :meth:`prepare`; its refresh memory is checkpointed.
    """

    objective: FusionObjective

    def extra_state(self) -> dict:
        return self.objective.state_dict()

    def load_extra_state(self, state: dict) -> None:
        self.objective.load_state_dict(state)

    def comprehensive_loss_text(self) -> str:
        """``"lambda * (gamma L_int + delta L_grad [+ L_percep]) [+ refresh]"`` with values."""
        loss = self.config.loss
        return (f"{loss.lam} * ({loss.gamma} L_int + {loss.delta} L_grad"
                f"{' + L_percep' if loss.perceptual_weights else ''})"
                f"{' + refresh' if loss.refresh else ''}")


class FusionObjective:
    """``theta L_distill + lambda L_comp + L_refresh`` of MMDRFuse.

    Args:
        config: loss settings.
        num_crops: number of fixed crops (size of the refresh memory).
        crop_size: crop side.
        dist: process group (refresh updates are shared between ranks).
        device: torch device.
    """

    def __init__(self, config: FusionLossConfig, num_crops: int, crop_size: int,
                 dist: DistContext, device: torch.device) -> None:
        self.config = config
        self.dist = dist
        self.vgg = None
        if config.perceptual_weights:
            self.vgg = load_vgg19(resolve_path(config.perceptual_weights),
                                  config.perceptual_imagenet_normalise).to(device)
            LOG.info("perceptual terms on (VGG-19 weights %s)", config.perceptual_weights)
        elif config.lam > 0:
            LOG.warning("perceptual terms OFF: no loss.perceptual_weights (VGG-19 ImageNet "
                        "weights cannot be downloaded here); training with intensity, gradient%s",
                        " and refresh terms" if config.refresh else " terms")
        self.memory = RefreshMemory(num_crops, crop_size) if config.refresh else None

    def __call__(self, output: torch.Tensor, batch: dict,
                 student: list[torch.Tensor] | None = None,
                 teacher: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """All terms for one batch.

        Args:
            output: ``(N, 1, h, w)`` model output (tanh range).
            batch: crops with ``visible`` RGB, ``infrared`` and ``index``.
            student: tensors to align by digestible distillation (features, output).
            teacher: the teacher's counterparts.

        Returns:
            Named scalar terms; ``"loss"`` is the weighted total.
        """
        config = self.config
        infrared = batch["infrared"]
        visible = rgb_to_luma(batch["visible"])
        terms: dict[str, torch.Tensor] = {
            "intensity": intensity_max_loss(output, infrared, visible),
            "gradient": gradient_max_loss(output, infrared, visible, config.gradient_target)}
        comprehensive = config.gamma * terms["intensity"] + config.delta * terms["gradient"]
        output_features = None
        if self.vgg is not None:
            output_features = self.vgg(output)
            with torch.no_grad():
                ir_features, vi_features = self.vgg(infrared), self.vgg(visible)
            terms["perceptual"] = perceptual_max_loss(output_features, ir_features, vi_features)
            comprehensive = comprehensive + terms["perceptual"]
        total = config.lam * comprehensive
        if config.theta > 0 and student is not None:
            terms["distill"] = digestible_distillation_loss(student, teacher)
            total = total + config.theta * terms["distill"]
        if config.teacher_l1 > 0 and teacher is not None:
            terms["teacher_l1"] = (output.clamp(0.0, 1.0)
                                   - teacher[-1].detach().clamp(0.0, 1.0)).abs().mean()
            total = total + config.teacher_l1 * terms["teacher_l1"]
        if self.memory is not None:
            ssim_scores, gmsd_scores = score_outputs(output, infrared, visible)
            targets = self.memory.recall(batch["index"], output.device)
            terms["refresh"], gaps = refresh_loss(output, targets, ssim_scores, gmsd_scores,
                                                  self.vgg, output_features)
            total = total + config.refresh_weight * terms["refresh"]
            indices, outputs, s_all, g_all = self.dist.all_gather_tensors(
                [batch["index"].to(output.device), output.detach(), ssim_scores, gmsd_scores])
            self.memory.update(indices, outputs, s_all, g_all)
            terms["score_ssim"] = ssim_scores.mean().detach()
            terms["score_gmsd"] = gmsd_scores.mean().detach()
        terms["loss"] = total
        return terms

    def state_dict(self) -> dict:
        """Refresh memory for checkpoints."""
        return {"memory": self.memory.state_dict()} if self.memory is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        if self.memory is not None and "memory" in state:
            self.memory.load_state_dict(state["memory"])

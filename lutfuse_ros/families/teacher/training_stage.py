"""The ``teacher`` stage: the MMDRFuse MM-Net teacher.

It is trained with the comprehensive loss and dynamic refresh (theta = 0: no distillation).
"""

from __future__ import annotations

import torch

from lutfuse_ros.families.teacher.model import FusionTeacher
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.stage import FusionObjective, ObjectiveStage


class TeacherStage(ObjectiveStage):
    """Train a :class:`~lutfuse_ros.families.teacher.model.FusionTeacher` from the sources alone."""

    description = ("MMDRFuse-style MM-Net teacher (dense encoder-decoder) trained by lutfuse "
                   "with the comprehensive loss and dynamic refresh.")

    def prepare(self, store: FrameStore, num_crops: int) -> None:
        torch.manual_seed(self.config.seed)
        self.model = FusionTeacher(width=self.config.teacher_model.width).to(self.device)
        self.objective = FusionObjective(self.config.loss, num_crops, self.config.data.crop_size,
                                         self.dist, self.device)

    def training_step(self, model, batch):
        output = model(batch["visible"], batch["infrared"])
        return self.objective(output, batch)

    def provenance(self) -> dict:
        return {"objective": self.comprehensive_loss_text(),
                "perceptual": bool(self.config.loss.perceptual_weights)}

"""The ``lut`` stage: MM-LUT distillation (LUT-Fuse) and the quantisation LUT.

``distill`` mode trains the table and the context network against the teacher's outputs
with the official recipe's losses:
``l1 * L1(O, T) + ssim * [(1 - SSIM(O, Y_vis)) + (1 - SSIM(O, IR))] + 10 * monotonicity +
1e-4 * smoothness``, starting from the quantisation LUT. ``quantise`` mode stops after
building the quantisation LUT (no gradient steps), for the paper's Table 5 comparison.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.features import rgb_to_luma
from lutfuse_ros.training.classical_teacher import ClassicalTeacher
from lutfuse_ros.training.config import resolve_path
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.losses import (gradient_max_loss, l1_distance, lut_monotonicity,
                                         lut_smoothness, ssim_loss)
from lutfuse_ros.families.mmlut.quantise import quantisation_table
from lutfuse_ros.training.rule_init import fill_from_rule
from lutfuse_ros.training.references import attach_source_references, attach_teacher_references
from lutfuse_ros.training.stage import Stage
from lutfuse_ros.training.teacher import build_teacher

LOG = logging.getLogger(__name__)


class _LutForward(nn.Module):
    """Returns the fused output and the table (so regularisers see DDP's parameter)."""

    def __init__(self, model: MMLUT) -> None:
        super().__init__()
        self.model = model

    def forward(self, visible_rgb, infrared):
        return self.model(visible_rgb, infrared), self.model.lut


class LutStage(Stage):
    """Distil (or quantise) an :class:`~lutfuse_ros.families.mmlut.model.MMLUT` from a teacher."""

    needs_reference = True

    @property
    def description(self) -> str:
        if self.config.lut.mode == "quantise":
            return ("Non-learnable quantisation MM-LUT (teacher outputs averaged per lattice "
                    "point) built by lutfuse; the baseline of LUT-Fuse Table 5.")
        lut, teacher = self.config.lut, self.config.teacher
        context = ("context network on %dx%d block averages with a frame-level term, value "
                   "upsampled bilinearly" % (lut.context_reduction, lut.context_reduction)
                   if lut.context_reduction > 1 else "full-resolution context network")
        source = (f"a classical {teacher.rule} rule (w {teacher.max_weight:.2g}, "
                  f"g {teacher.sum_gain:.2g})"
                  if teacher.kind == "classical" else "its own teacher")
        return (f"MM-LUT (LUT-Fuse) distilled by lutfuse from {source}: learnable 4-D table "
                f"and {context}.")

    @property
    def trainable(self) -> bool:
        return self.config.lut.mode == "distill"

    def prepare(self, store: FrameStore, num_crops: int) -> None:
        config, lut = self.config, self.config.lut
        self.teacher = build_teacher(config.teacher)
        if self.teacher is None:
            attach_source_references(store)
            self.reference_cache = None
        else:
            self.teacher.to(self.device)
            cache_root = (resolve_path(config.teacher.cache_dir) if config.teacher.cache_dir
                          else resolve_path(config.run_dir) / "teacher_outputs")
            self.reference_cache = attach_teacher_references(store, self.teacher, cache_root,
                                                             self.dist, self.device)
        torch.manual_seed(config.seed)
        self.model = MMLUT(lut.bins, lut.context_channels, lut.context_blocks, lut.lattice,
                           context_reduction=lut.context_reduction)
        init = "quantise" if lut.mode == "quantise" else lut.init
        with torch.no_grad():
            if init == "quantise":
                self.model.lut.copy_(quantisation_table(
                    store, lut.bins, lut.lattice, lut.quantise_pixels_per_frame, config.seed,
                    progress=self.dist.is_main))
            elif init == "analytic_max":
                self.model.fill_analytic("max")
            elif init == "teacher_rule":
                fill_from_rule(self.model, self.teacher)
        self.init = init
        self.model.to(self.device)
        self.train_module = _LutForward(self.model)

    def parameter_groups(self) -> list[dict]:
        lut, lr = self.config.lut, self.config.train.lr
        return [{"params": [self.model.lut], "lr": lut.lut_lr or lr},
                {"params": list(self.model.context.parameters()), "lr": lut.context_lr or lr}]

    def training_step(self, model, batch):
        lut = self.config.lut
        output, table = model(batch["visible"], batch["infrared"])
        luma = rgb_to_luma(batch["visible"])
        reference = batch["reference"]
        if isinstance(self.teacher, ClassicalTeacher):
            # the rule on the crop itself: its frame mean is the crop's, which is also what
            # the context's level term sees (the cached full-frame output would disagree)
            reference = self.teacher.fuse_luma(batch["visible"], batch["infrared"])
        terms = {
            "l1": l1_distance(output, reference),
            "monotonicity": lut_monotonicity(table),
            "smoothness": lut_smoothness(table)}
        if lut.ssim_weight:
            terms["ssim"] = (ssim_loss(output, luma, lut.ssim_window)
                             + ssim_loss(output, batch["infrared"], lut.ssim_window))
        if lut.gradient_weight:
            terms["gradient"] = gradient_max_loss(output, batch["infrared"], luma)
        terms["loss"] = (lut.l1_weight * terms["l1"] + lut.ssim_weight * terms.get("ssim", 0.0)
                         + lut.gradient_weight * terms.get("gradient", 0.0)
                         + lut.monotonicity_weight * terms["monotonicity"]
                         + lut.smoothness_weight * terms["smoothness"])
        return terms

    def provenance(self) -> dict:
        lut = self.config.lut
        info = {"mode": lut.mode, "init": self.init,
                "teacher": self.teacher.describe() if self.teacher else
                {"kind": "folder", "references": "per data source"}}
        if lut.mode == "distill":
            info["objective"] = (f"{lut.l1_weight} L1 + {lut.ssim_weight} SSIM(vis, ir) + "
                                 f"{lut.monotonicity_weight} mono + {lut.smoothness_weight} smooth"
                                 + (f" + {lut.gradient_weight} grad-max MSE"
                                    if lut.gradient_weight else ""))
            info["context_reduction"] = lut.context_reduction
        return info

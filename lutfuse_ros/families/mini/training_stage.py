"""The ``mini`` stage: MMDRFuse digestible distillation of the 113-parameter mini-model.

``total = theta L_distill + lambda (gamma L_int + delta L_grad [+ L_percep]) + L_refresh``
with the paper's student hyper-parameters by default (gamma 0.5, delta 0.05, theta 5,
lambda 1). The teacher runs on the same crops; with ``mini.cache_teacher`` and fixed crops its
features and outputs are computed once per crop.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families.mini.model import MiniFusionNet
from lutfuse_ros.families.teacher.model import FusionTeacher
from lutfuse_ros.training.datasets import FrameStore
from lutfuse_ros.training.references import attach_source_references
from lutfuse_ros.training.stage import FusionObjective, ObjectiveStage
from lutfuse_ros.training.teacher import ArtifactTeacher, build_teacher

LOG = logging.getLogger(__name__)


class _FeaturesForward(nn.Module):
    """Makes ``forward_features`` the ``forward`` (so DistributedDataParallel sees it)."""

    def __init__(self, model: MiniFusionNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, visible_rgb, infrared):
        return self.model.forward_features(visible_rgb, infrared)


def _wake_spare_hidden_units(model: MiniFusionNet, seed: int, scale: float = 0.01) -> None:
    """Give the hidden units the hand-made maximum leaves unused small random input weights.

    ``fill_analytic`` zeroes them, and a unit whose pre-activation is exactly 0 everywhere
    never learns (ReLU's gradient at 0 is 0). Their output weights stay 0, so the model still
    starts as the exact maximum.
    """
    generator = torch.Generator().manual_seed(seed)
    weight = model.conv1[1].weight
    with torch.no_grad():
        spare = weight[2:]
        spare.copy_(scale * torch.randn(spare.shape, generator=generator).to(weight.device))


def _train_centre_taps_only(model: MiniFusionNet) -> None:
    """Zero the off-centre taps of both 3x3 layers and keep them at zero while training."""
    mask = torch.zeros(3, 3)
    mask[1, 1] = 1.0
    for conv in (model.conv1[1], model.conv2[1]):
        with torch.no_grad():
            conv.weight.mul_(mask.to(conv.weight.device))
        conv.weight.register_hook(lambda grad, m=mask: grad * m.to(grad.device))
    LOG.info("mini-model trains its centre taps only (off-centre taps held at 0)")


class MiniStage(ObjectiveStage):
    """Distil a :class:`~lutfuse_ros.families.mini.model.MiniFusionNet` from a teacher."""

    @property
    def description(self) -> str:
        """One sentence for the manifest, from the recipe (architecture, teacher, objective)."""
        mini, teacher, loss = self.config.mini, self.config.teacher, self.config.loss
        extras = [text for on, text in ((mini.frame_level, "a frame-level term"),
                                        (mini.output == "linear", "a linear output"),
                                        (mini.centre_taps_only, "centre taps only")) if on]
        architecture = (f"MMDRFuse-style {mini.hidden}-unit two-layer 3x3 mini-model"
                        + (f" with {', '.join(extras)}" if extras else ""))
        source = (f"a classical {teacher.rule} rule (w {teacher.max_weight:.2g}, "
                  f"g {teacher.sum_gain:.2g})" if teacher.kind == "classical"
                  else "its own teacher")
        terms = [text for on, text in ((loss.theta > 0, "digestible distillation"),
                                       (loss.lam > 0 and (loss.gamma > 0 or loss.delta > 0),
                                        "comprehensive loss"),
                                       (loss.refresh, "dynamic refresh"),
                                       (loss.teacher_l1 > 0, "L1 to the teacher")) if on]
        return (f"{architecture}, distilled by lutfuse from {source}"
                + (f" ({', '.join(terms)})." if terms else "."))

    def prepare(self, store: FrameStore, num_crops: int) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        self.teacher = build_teacher(config.teacher)
        if self.teacher is None:
            self.needs_reference = True
            attach_source_references(store)
        else:
            self.teacher.to(self.device)
        self.model = MiniFusionNet(config.mini.hidden, config.mini.quantise_input,
                                   config.mini.frame_level, config.mini.output).to(self.device)
        self._initialise_student()
        if config.mini.centre_taps_only:
            _train_centre_taps_only(self.model)
        self.train_module = _FeaturesForward(self.model)
        self.objective = FusionObjective(config.loss, num_crops, config.data.crop_size,
                                         self.dist, self.device)
        self.use_features = bool(config.loss.feature_distillation and self.teacher is not None
                                 and self.teacher.provides_features)
        if config.loss.theta > 0 and not self.use_features:
            LOG.warning("digestible distillation aligns outputs only (the teacher exposes no "
                        "4-channel features or loss.feature_distillation is off)")
        self._cache: dict[int, tuple[torch.Tensor | None, torch.Tensor]] | None = (
            {} if config.mini.cache_teacher and config.data.fixed_crops and self.teacher else None)

    def _initialise_student(self) -> None:
        init = self.config.mini.init
        if init == "analytic_max":
            if self.config.mini.hidden < 2:
                raise ConfigError("mini.init: analytic_max needs mini.hidden >= 2")
            self.model.fill_analytic()
            _wake_spare_hidden_units(self.model, seed=self.config.seed)
            LOG.info("mini-model initialised to the per-pixel maximum (hand-made weights)")
            return
        if init == "random":
            return
        teacher = self.teacher
        if (isinstance(teacher, ArtifactTeacher) and isinstance(teacher.model, FusionTeacher)
                and self.config.mini.hidden == 4):
            with torch.no_grad():
                self.model.conv2[1].weight.copy_(teacher.model.conv00[1].weight)
                self.model.conv2[1].bias.copy_(teacher.model.conv00[1].bias)
            LOG.info("mini-model decoder initialised from the teacher's last layer")
        else:
            LOG.info("mini.init teacher_decoder: random init instead (needs a FusionTeacher "
                     "artifact teacher and hidden=4)")

    def _teacher_outputs(self, batch: dict) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.teacher is None:
            return None, batch["reference"]
        if self._cache is None:
            return self.teacher.run(batch["visible"], batch["infrared"])
        indices = batch["index"].tolist()
        missing = [i for i, index in enumerate(indices) if index not in self._cache]
        if missing:
            rows = torch.tensor(missing, device=batch["visible"].device)
            features, output = self.teacher.run(batch["visible"][rows], batch["infrared"][rows])
            for row, i in enumerate(missing):
                self._cache[indices[i]] = (
                    features[row].to("cpu", torch.float16) if features is not None else None,
                    output[row].to("cpu", torch.float16))
        entries = [self._cache[index] for index in indices]
        output = torch.stack([e[1] for e in entries]).float().to(self.device)
        features = (torch.stack([e[0] for e in entries]).float().to(self.device)
                    if entries[0][0] is not None else None)
        return features, output

    def training_step(self, model, batch):
        features, output = model(batch["visible"], batch["infrared"])
        teacher_features, teacher_output = self._teacher_outputs(batch)
        if self.use_features and teacher_features is not None:
            student, teacher = [features, output], [teacher_features, teacher_output]
        else:
            student, teacher = [output], [teacher_output]
        return self.objective(output, batch, student, teacher)

    def provenance(self) -> dict:
        loss = self.config.loss
        return {"teacher": self.teacher.describe() if self.teacher else
                {"kind": "folder", "references": "per data source"},
                "objective": (f"{loss.theta} L_distill + {self.comprehensive_loss_text()}"
                              + (f" + {loss.teacher_l1} L1(student, teacher)"
                                 if loss.teacher_l1 else "")),
                "feature_distillation": self.use_features,
                "teacher_l1": loss.teacher_l1,
                "centre_taps_only": self.config.mini.centre_taps_only,
                "perceptual": bool(loss.perceptual_weights)}

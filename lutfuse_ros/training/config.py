"""Training configuration: a YAML file read into validated dataclasses.

One file describes one run (``lutfuse train STAGE --config FILE.yaml``). Unknown keys, wrong
types and out-of-range values raise :class:`~lutfuse_ros.errors.ConfigError` naming the key
path (``data.sources[1].every``). Relative paths are taken relative to the current working
directory (the example configs in ``config/`` are meant to be run from the repository root);
``~`` and ``$VARIABLES`` are expanded. The raw YAML text is kept for the artifact manifest.


The ``data`` section's dataclasses live in :mod:`lutfuse_ros.training.data_config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families import STAGE_FAMILIES
from lutfuse_ros.training.data_config import DataConfig
from lutfuse_ros.training.dataclass_yaml import (
    apply_override,
    build_dataclass,
    check_choice,
    check_min,
)

#: ``lutfuse train`` stages: one per model family that has one (lutfuse_ros.families).
STAGES = tuple(STAGE_FAMILIES)
TEACHER_KINDS = ("artifact", "torchscript", "onnx", "folder", "classical")
LUT_MODES = ("distill", "quantise")
MINI_INITS = ("teacher_decoder", "analytic_max", "random")
MINI_OUTPUTS = ("tanh", "linear")
LUT_INITS = ("quantise", "analytic_max", "zeros", "teacher_rule")
GRADIENT_TARGETS = ("max_of_gradients", "gradient_of_max")


@dataclass
class TrainConfig:
    """Optimisation schedule and bookkeeping.

    Attributes:
        epochs: passes over ``crops_per_epoch`` crops.
        batch_size: crops per step and rank.
        lr: Adam learning rate (stages may set per-group rates).
        num_workers: DataLoader worker processes (0: load in the training process).
        checkpoint_every: steps between checkpoints (an interruption loses at most this many).
        log_every: steps between TensorBoard scalars.
        max_steps: stop after this many steps in total (for smoke tests), None for no limit.
        grad_clip: clip the gradient norm to this value (0: off).
    """

    epochs: int = 1
    batch_size: int = 8
    lr: float = 1e-4
    num_workers: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    max_steps: int | None = None
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        check_min("epochs", self.epochs, 1)
        check_min("batch_size", self.batch_size, 1)
        check_min("num_workers", self.num_workers, 0)
        check_min("checkpoint_every", self.checkpoint_every, 1)
        check_min("log_every", self.log_every, 1)
        if self.max_steps is not None:
            check_min("max_steps", self.max_steps, 1)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


@dataclass
class TeacherSourceConfig:
    """The teacher that the LUT and mini-model stages learn from.

    Attributes:
        kind: ``artifact`` (a lutfuse ``.safetensors``, e.g. from ``lutfuse train teacher``),
            ``torchscript`` (a ``torch.jit`` file called as ``model(visible_rgb, infrared)``),
            ``onnx`` (inputs ``visible_rgb`` and ``infrared``, first output the fused
            luminance), ``folder`` (precomputed references given per source) or
            ``classical`` (a closed-form fusion rule,
            :mod:`lutfuse_ros.training.classical_teacher`).
        path: the model file (not used by ``folder`` and ``classical``).
        rule: the ``classical`` rule (``sum_max_blend``).
        max_weight: its weight of the per-pixel maximum.
        sum_gain: its gain of the sum term.
        cache_dir: where a live teacher's full-frame outputs are cached for the ``lut`` stage
            (in a sub-folder named after the teacher's hash); None: ``<run_dir>/teacher_outputs``.
    """

    kind: str = "artifact"
    path: str | None = None
    cache_dir: str | None = None
    rule: str = "sum_max_blend"
    max_weight: float = 0.2
    sum_gain: float = 0.8

    def __post_init__(self) -> None:
        check_choice("teacher.kind", self.kind, TEACHER_KINDS)
        if self.kind not in ("folder", "classical") and not self.path:
            raise ConfigError(f"teacher.path is required for a {self.kind} teacher")


@dataclass
class FusionLossConfig:
    """MMDRFuse losses (teacher and mini-model stages).

    ``total = theta * distill + lambda * (gamma * L_int + delta * L_grad + L_percep) + refresh``.

    Attributes:
        gamma: intensity (max) weight.
        delta: gradient (max) weight.
        theta: digestible distillation weight (0 for the teacher).
        lam: comprehensive loss weight (lambda).
        gradient_target: ``max_of_gradients`` (max of the sources' Sobel magnitudes) or
            ``gradient_of_max`` (Sobel magnitude of max(IR, VIS), the official code's choice).
        perceptual_weights: VGG-19 weights file (a torchvision-layout state dict); None turns
            the perceptual terms off (ImageNet weights cannot be downloaded here).
        perceptual_imagenet_normalise: normalise VGG inputs with the ImageNet mean and std.
        refresh: use the dynamic refresh strategy (needs ``data.fixed_crops``).
        refresh_weight: multiplier of ``gap_s L_s + gap_g L_g`` (paper 1; official code 10).
        feature_distillation: also align the 4-channel features (needs a teacher exposing
            them: a FusionTeacher artifact); otherwise only the outputs are aligned.
        teacher_l1: weight of the L1 distance between the student's and the teacher's outputs,
            both clamped to [0, 1] as the node shows them (mini stage; beyond the paper, whose
            distillation term is scale-invariant and so cannot follow a teacher's brightness).
    """

    gamma: float = 2.0
    delta: float = 0.1
    theta: float = 0.0
    lam: float = 1.0
    gradient_target: str = "max_of_gradients"
    perceptual_weights: str | None = None
    perceptual_imagenet_normalise: bool = False
    refresh: bool = True
    refresh_weight: float = 1.0
    feature_distillation: bool = True
    teacher_l1: float = 0.0

    def __post_init__(self) -> None:
        check_choice("loss.gradient_target", self.gradient_target, GRADIENT_TARGETS)
        for name in ("gamma", "delta", "theta", "lam", "refresh_weight", "teacher_l1"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class TeacherModelConfig:
    """Architecture of the MM-Net teacher trained by the ``teacher`` stage."""

    width: int = 32

    def __post_init__(self) -> None:
        check_min("teacher_model.width", self.width, 1)


@dataclass
class LutConfig:
    """MM-LUT stage (LUT-Fuse).

    Attributes:
        mode: ``distill`` (learnable LUT and context net against the teacher) or
            ``quantise`` (the classic non-learnable LUT: each cell holds the mean teacher
            output of the training pixels that fall in it; no gradient steps).
        bins: lattice points per axis.
        lattice: ``official`` or ``endpoint`` axis layout.
        context_channels: hidden width of the context network.
        context_blocks: middle blocks of the context network.
        context_reduction: 1 (official: context per full-resolution pixel) or ``r >= 2``
            (context on ``r x r`` block averages, value upsampled; the speed design).
        init: start of distillation: ``quantise`` (the quantisation LUT, paper),
            ``analytic_max`` / ``zeros``, or ``teacher_rule`` (a ``classical`` teacher's rule
            written into the table, the context's level term set to carry the frame mean;
            needs ``context_reduction >= 2``).
        lut_lr: learning rate of the table (None: ``train.lr``).
        context_lr: learning rate of the context network (None: ``train.lr``).
        l1_weight: weight of L1(output, teacher).
        ssim_weight: weight of the SSIM loss (output vs visible luminance + output vs IR).
        ssim_window: Gaussian window side of that SSIM (sigma 1.5).
        gradient_weight: weight of MSE(|grad output|, max(|grad Y|, |grad IR|)) (MMDRFuse's
            gradient term; 0: off, the papers' LUT recipe).
        monotonicity_weight: weight of the monotonicity regulariser (official 10).
        smoothness_weight: weight of the smoothness regulariser (official 1e-4).
        quantise_pixels_per_frame: pixels sampled per frame to fill the quantisation LUT.
    """

    mode: str = "distill"
    bins: int = 17
    lattice: str = "endpoint"
    context_channels: int = 16
    context_blocks: int = 3
    context_reduction: int = 1
    init: str = "quantise"
    lut_lr: float | None = None
    context_lr: float | None = None
    l1_weight: float = 1.0
    ssim_weight: float = 1.0
    ssim_window: int = 11
    gradient_weight: float = 0.0
    monotonicity_weight: float = 10.0
    smoothness_weight: float = 1e-4
    quantise_pixels_per_frame: int = 65536

    def __post_init__(self) -> None:
        check_choice("lut.mode", self.mode, LUT_MODES)
        check_choice("lut.init", self.init, LUT_INITS)
        check_choice("lut.lattice", self.lattice, ("official", "endpoint"))
        check_min("lut.bins", self.bins, 2)
        check_min("lut.context_channels", self.context_channels, 1)
        check_min("lut.context_blocks", self.context_blocks, 0)
        check_min("lut.context_reduction", self.context_reduction, 1)
        check_min("lut.ssim_window", self.ssim_window, 3)
        check_min("lut.quantise_pixels_per_frame", self.quantise_pixels_per_frame, 1)


@dataclass
class MiniConfig:
    """Mini-model stage (MMDRFuse student).

    Attributes:
        hidden: width of the hidden layer (4: the 113-parameter model).
        quantise_input: round the visible luminance to 8 bits, as the node sees it.
        init: starting weights. ``teacher_decoder``: random first layer, second layer copied
            from the teacher's last conv (4 -> 1) as the official code does (FusionTeacher
            artifact teachers with hidden=4 only; random otherwise). ``analytic_max``: the
            hand-made weights of
            :meth:`~lutfuse_ros.families.mini.model.MiniFusionNet.fill_analytic` (per-pixel
            maximum, the target of the intensity loss). ``random``: PyTorch's default init.
        cache_teacher: keep the teacher's features and outputs per fixed crop in memory (the
            teacher then runs once per crop instead of once per crop and epoch).
        frame_level: the architecture with the frame-level term
            (:class:`~lutfuse_ros.families.mini.model.MiniFusionNet`); off is the paper's
            113-parameter model.
        output: the output activation, ``tanh`` (the paper's) or ``linear`` (see
            :class:`~lutfuse_ros.families.mini.model.MiniFusionNet`).
        centre_taps_only: train only the centre tap of every 3x3 kernel (the others stay 0):
            the model is then a per-pixel function, for per-pixel teachers such as the
            classical rule (the 3x3 shapes, and so the paper's architecture, are kept).
    """

    hidden: int = 4
    quantise_input: bool = True
    init: str = "teacher_decoder"
    cache_teacher: bool = True
    frame_level: bool = False
    output: str = "tanh"
    centre_taps_only: bool = False

    def __post_init__(self) -> None:
        check_min("mini.hidden", self.hidden, 1)
        check_choice("mini.output", self.output, MINI_OUTPUTS)
        check_choice("mini.init", self.init, MINI_INITS)


@dataclass
class ValidationConfig:
    """End-of-run evaluation with :mod:`lutfuse_ros.metrics`.

    Used only to report metrics (never to pick checkpoints), so it may be a held-out test set.

    Attributes:
        visible: folder of visible images (None: no validation).
        thermal: folder of thermal images matched by file stem.
        max_pairs: evaluate at most this many pairs (sorted by name).
        baselines: add the average and max(ir, vi) rows to the table.
    """

    visible: str | None = None
    thermal: str | None = None
    max_pairs: int | None = None
    baselines: bool = True

    def __post_init__(self) -> None:
        if bool(self.visible) != bool(self.thermal):
            raise ConfigError("validation needs both 'visible' and 'thermal' folders (or neither)")


@dataclass
class TrainingConfig:
    """A whole training run.

    Attributes:
        stage: ``teacher``, ``lut`` or ``mini``.
        name: artifact name (manifest ``name``).
        output: destination ``.safetensors`` of the trained model.
        run_dir: folder for checkpoints, logs, TensorBoard, the loss curve and validation.
        seed: seed of the crop plan, the shuffling and the initialisation.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
        description: one sentence for the manifest.
        data: training data.
        train: schedule.
        teacher: the teacher (``lut`` and ``mini`` stages).
        teacher_model: architecture (``teacher`` stage).
        lut: ``lut`` stage settings.
        mini: ``mini`` stage settings.
        loss: MMDRFuse losses (``teacher`` and ``mini`` stages).
        validation: end-of-run evaluation.
    """

    stage: str
    name: str
    output: str
    run_dir: str
    seed: int = 0
    device: str = "auto"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: TeacherSourceConfig | None = None
    teacher_model: TeacherModelConfig = field(default_factory=TeacherModelConfig)
    lut: LutConfig = field(default_factory=LutConfig)
    mini: MiniConfig = field(default_factory=MiniConfig)
    loss: FusionLossConfig = field(default_factory=FusionLossConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    source_text: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_choice("stage", self.stage, STAGES)
        if not self.output.endswith(".safetensors"):
            raise ConfigError(f"output must be a .safetensors path, got {self.output!r}")
        if self.stage in ("lut", "mini") and self.teacher is None:
            raise ConfigError(f"the {self.stage} stage needs a 'teacher' section")
        if self.teacher is not None and self.teacher.kind == "folder" and not all(
                s.references for s in self.data.sources):
            raise ConfigError("a folder teacher needs 'references' on every data source")
        if self.stage in ("teacher", "mini") and self.loss.refresh and not self.data.fixed_crops:
            raise ConfigError("loss.refresh (dynamic refresh) remembers outputs per crop and "
                              "needs data.fixed_crops: true")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> TrainingConfig:
    """Read a training YAML file.

    Args:
        path: the YAML file.
        overrides: ``dotted.key=value`` strings applied on top (value parsed as YAML), e.g.
            ``train.max_steps=5``.

    Raises:
        ConfigError: unreadable file, unknown keys, wrong types or invalid values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read training config {path}: {error}") from None
    return parse_config(text, overrides, origin=str(path))


def parse_config(text: str, overrides: list[str] | None = None,
                 origin: str = "<config>") -> TrainingConfig:
    """Parse YAML text into a :class:`TrainingConfig` (see :func:`load_config`)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{origin}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: a training config must be a YAML mapping")
    for override in overrides or []:
        apply_override(raw, override)
    config = build_dataclass(TrainingConfig, raw)
    config.source_text = text if not overrides else (
        text + "\n# overrides: " + ", ".join(overrides) + "\n")
    return config


def resolve_path(path: str | None) -> Path | None:
    """Expand ``~`` and ``$VARS`` of a config path (relative paths stay relative to the CWD)."""
    if path is None:
        return None
    return Path(os.path.expandvars(os.path.expanduser(path)))

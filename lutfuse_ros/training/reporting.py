"""Run outputs for people.

TensorBoard scalars, the loss history and its PNG curve, and the end-of-run validation table.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.training.config import ValidationConfig, resolve_path

LOG = logging.getLogger(__name__)


class TrainingLog:
    """Loss history (kept in checkpoints), TensorBoard scalars and the loss-curve PNG.

    Args:
        run_dir: the run folder (``tensorboard/`` and ``loss_curve.png`` go there).
        enabled: False on ranks other than 0 (nothing is written).
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.history: list[dict] = []
        self._writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                LOG.warning("tensorboard is not installed: no TensorBoard logs")

    def record(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """Store one row of scalars (the means since the last row)."""
        if not self.enabled:
            return
        self.history.append({"step": step, "epoch": epoch, **values})
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"train/{name}", value, step)
            self._writer.flush()

    def write_curve(self) -> Path | None:
        """Plot every logged term against the step into ``loss_curve.png``."""
        if not self.enabled or not self.history:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [k for k in self.history[-1] if k not in ("step", "epoch")]
        steps = [row["step"] for row in self.history]
        figure, axes = plt.subplots(figsize=(8, 4.5))
        for name in names:
            values = [row.get(name, np.nan) for row in self.history]
            if all(v is None or not np.isfinite(v) or v <= 0 for v in values):
                continue
            axes.plot(steps, values, label=name)
        axes.set_xlabel("step")
        axes.set_ylabel("loss term (log scale)")
        axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = self.run_dir / "loss_curve.png"
        try:
            with atomic_output(path, overwrite=True) as temporary:
                figure.savefig(temporary, dpi=100)
        finally:
            plt.close(figure)
        return path

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def validate(model: nn.Module, manifest: dict, config: ValidationConfig, out_dir: Path,
             device: str = "cpu", progress: bool = True) -> tuple[str, dict[str, float]] | None:
    """Fuse a validation folder with the node's pipeline and compute the fusion metrics.

    Args:
        model: the trained model.
        manifest: its manifest (for the output mapping).
        config: validation folders and options.
        out_dir: where the fused PNGs go (``<out_dir>/<stem>.png``, overwritten).
        device: torch device for inference.

    Returns:
        ``(markdown_table, means)`` or None when no validation folder is configured.
    """
    if not config.visible:
        return None
    from tqdm import tqdm

    from lutfuse_ros.backends import create_backend
    from lutfuse_ros.image_io import find_pairs, read_thermal, read_visible, write_image_atomic
    from lutfuse_ros.metrics import evaluate_baselines, evaluate_folder, to_markdown

    visible_dir, thermal_dir = resolve_path(config.visible), resolve_path(config.thermal)
    pairs, _ = find_pairs(visible_dir, thermal_dir)
    pairs = pairs[:config.max_pairs]
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    artifact = Artifact(path=None, manifest=manifest, state_dict=state)
    pipeline = FusionPipeline(create_backend("torch", artifact, device))
    with torch.no_grad():
        for pair in tqdm(pairs, desc="validation", unit="pair", disable=not progress):
            fused = pipeline.fuse(read_visible(pair.visible), read_thermal(pair.thermal))
            write_image_atomic(out_dir / f"{pair.name}.png", fused, overwrite=True)
    names = [pair.name for pair in pairs]
    reports = {manifest["name"]: evaluate_folder(out_dir, thermal_dir, visible_dir, names,
                                                 progress=progress)}
    if config.baselines:
        reports.update(evaluate_baselines(thermal_dir, visible_dir, names=names, progress=progress))
    means = {k: float(v) for k, v in reports[manifest["name"]].means.items()}
    return to_markdown(reports), means


def write_json_atomic(path: Path, data) -> None:
    """Write JSON through a temporary file and a rename."""
    with atomic_output(path, overwrite=True) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, default=str)

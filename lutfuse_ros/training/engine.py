"""The training loop shared by every stage.

It covers data, optimisation, checkpoints and resume, DistributedDataParallel, logging,
validation and the final artifact.

``train(config)`` runs one stage end to end. Interrupted runs resume from
``<run_dir>/checkpoint.pt`` (``resume=True``) and lose at most ``train.checkpoint_every``
steps: the crop plan and the shuffling are pure functions of ``(seed, epoch)``, so the resumed
run skips exactly the batches already done. A finished artifact is never replaced unless
``force=True``.
"""

from __future__ import annotations

import logging
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from lutfuse_ros.artifacts import make_manifest, save_artifact
from lutfuse_ros.atomic_files import atomic_output
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families import STAGE_FAMILIES
from lutfuse_ros.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from lutfuse_ros.training.config import TrainingConfig, resolve_path
from lutfuse_ros.training.datasets import CropDataset, build_frame_store
from lutfuse_ros.training.distributed import DistContext, init_distributed, shutdown_distributed
from lutfuse_ros.training.reporting import TrainingLog, validate, write_json_atomic
from lutfuse_ros.training.stage import Stage

LOG = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What a run produced.

    Attributes:
        artifact: the saved model (None on ranks other than 0).
        run_dir: checkpoints, logs, curve, validation images.
        steps: optimisation steps done in total.
        metrics_markdown: the validation table, if validation ran.
    """

    artifact: Path | None
    run_dir: Path
    steps: int
    metrics_markdown: str | None = None


@dataclass
class _Progress:
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    elapsed: float = 0.0


def create_stage(config: TrainingConfig, device: torch.device, dist: DistContext) -> Stage:
    """Instantiate the training stage of the family registered for ``config.stage``."""
    return STAGE_FAMILIES[config.stage].part("training_stage")(config, device, dist)


def train(config: TrainingConfig, resume: bool = False, force: bool = False,
          progress: bool = True) -> TrainingResult:
    """Run one training stage end to end (joins a torchrun process group if there is one).

    Args:
        config: the run.
        resume: continue from ``<run_dir>/checkpoint.pt`` when it exists.
        force: replace an existing output artifact; start over despite a checkpoint.
        progress: show progress bars.

    Raises:
        FileExistsError: the output exists and ``force`` is False.
        ConfigError: a checkpoint exists but neither ``resume`` nor ``force`` was given, or
            the checkpoint belongs to another stage.
    """
    dist, device = init_distributed(config.device)
    try:
        return _Run(config, dist, device, resume, force, progress and dist.is_main).execute()
    finally:
        shutdown_distributed(dist)


class _Run:
    def __init__(self, config: TrainingConfig, dist: DistContext, device: torch.device,
                 resume: bool, force: bool, progress: bool) -> None:
        self.config, self.dist, self.device = config, dist, device
        self.resume, self.force, self.progress = resume, force, progress
        self.output = resolve_path(config.output)
        self.run_dir = resolve_path(config.run_dir)
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        self.state = _Progress()
        self.log = TrainingLog(self.run_dir, enabled=dist.is_main)

    def execute(self) -> TrainingResult:
        self._check_outputs()
        session_start = time.monotonic()
        config = self.config
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % (2 ** 32))
        store = build_frame_store(config.data)
        LOG.info("training frames: %s", ", ".join(f"{s['label']} ({s['frames']})"
                                                  for s in store.describe()))
        self.store = store
        stage = create_stage(config, self.device, self.dist)
        stage.prepare(store, config.data.crops_per_epoch)
        self.stage = stage
        if stage.trainable:
            self._fit(stage, store, session_start)
        else:
            LOG.info("stage %s builds its model without gradient steps", config.stage)
            self.state.elapsed += time.monotonic() - session_start
        result = TrainingResult(None, self.run_dir, self.state.global_step)
        if self.dist.is_main:
            result = self._export(stage, result)
        self.dist.barrier()
        self.log.close()
        return result

    def _check_outputs(self) -> None:
        if self.output.exists() and not self.force:
            raise FileExistsError(f"{self.output} exists; pass --force to replace it")
        if self.checkpoint_path.exists() and not (self.resume or self.force):
            raise ConfigError(f"{self.checkpoint_path} holds an earlier run: pass --resume to "
                              "continue it or --force to start over")
        self.dist.barrier()
        if self.force and not self.resume and self.checkpoint_path.exists() and self.dist.is_main:
            self.checkpoint_path.unlink()
        self.dist.barrier()

    # ------------------------------------------------------------------------ training
    def _fit(self, stage: Stage, store, session_start: float) -> None:
        config, dist = self.config, self.dist
        dataset = CropDataset(store, config.data.crop_size, config.data.crops_per_epoch,
                              config.data.fixed_crops, config.data.flips, config.seed,
                              with_reference=stage.needs_reference)
        optimizer = torch.optim.Adam(stage.parameter_groups(), lr=config.train.lr)
        module = stage.train_module or stage.model
        if dist.is_distributed:
            module = DistributedDataParallel(
                module, device_ids=[self.device] if self.device.type == "cuda" else None)
        if self.resume and self.checkpoint_path.exists():
            self._restore(stage, optimizer)
        sampler = DistributedSampler(dataset, num_replicas=dist.world_size, rank=dist.rank,
                                     shuffle=True, seed=config.seed)
        batch_size = config.train.batch_size
        steps_per_epoch = math.ceil(len(sampler) / batch_size)
        max_steps = config.train.max_steps or config.train.epochs * steps_per_epoch
        sums: dict[str, float] = {}
        count = 0
        last_save = self.state.global_step
        while self.state.epoch < config.train.epochs and self.state.global_step < max_steps:
            dataset.set_epoch(self.state.epoch)
            sampler.set_epoch(self.state.epoch)
            order = list(sampler)[self.state.step_in_epoch * batch_size:]
            loader = DataLoader(dataset, batch_size=batch_size, sampler=order,
                                num_workers=config.train.num_workers,
                                persistent_workers=False)
            bar = tqdm(total=steps_per_epoch, initial=self.state.step_in_epoch,
                       desc=f"{config.stage} epoch {self.state.epoch + 1}/{config.train.epochs}",
                       unit="step", disable=not self.progress, dynamic_ncols=True)
            for batch in loader:
                terms = self._step(stage, module, optimizer, batch)
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                count += 1
                self.state.step_in_epoch += 1
                self.state.global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{terms['loss']:.4g}")
                if self.state.global_step % config.train.log_every == 0:
                    self.log.record(self.state.global_step, self.state.epoch,
                                    {k: v / count for k, v in sums.items()})
                    sums, count = {}, 0
                if self.state.global_step % config.train.checkpoint_every == 0:
                    self._save(stage, optimizer, session_start)
                    session_start, last_save = time.monotonic(), self.state.global_step
                if self.state.global_step >= max_steps:
                    break
            bar.close()
            if self.state.step_in_epoch >= steps_per_epoch:
                self.state.epoch += 1
                self.state.step_in_epoch = 0
        if count:
            self.log.record(self.state.global_step, self.state.epoch,
                            {k: v / count for k, v in sums.items()})
        if self.state.global_step != last_save or not self.checkpoint_path.exists():
            self._save(stage, optimizer, session_start)

    def _step(self, stage: Stage, module, optimizer, batch: dict) -> dict[str, float]:
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        terms = stage.training_step(module, batch)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)]
            raise ConfigError(f"the loss became non-finite at step {self.state.global_step + 1} "
                              f"(terms {', '.join(bad)}); lower train.lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(stage.model.parameters(), self.config.train.grad_clip)
        optimizer.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def _save(self, stage: Stage, optimizer, session_start: float) -> None:
        self.state.elapsed += time.monotonic() - session_start
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_path, {
                "stage": self.config.stage, "config_text": self.config.source_text,
                "model": stage.model.state_dict(), "optimizer": optimizer.state_dict(),
                "extra": stage.extra_state(), "progress": vars(self.state).copy(),
                "history": self.log.history, "torch_rng": torch.get_rng_state()})
            self.log.write_curve()
        self.dist.barrier()

    def _restore(self, stage: Stage, optimizer) -> None:
        state = load_checkpoint(self.checkpoint_path, self.device)
        if state.get("stage") != self.config.stage:
            raise ConfigError(f"{self.checkpoint_path} belongs to a {state.get('stage')} run, "
                              f"not {self.config.stage}")
        if state.get("config_text") != self.config.source_text:
            LOG.warning("the config differs from the checkpoint's; resuming anyway")
        try:
            stage.model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            stage.load_extra_state(state.get("extra", {}))
            progress = _Progress(**state["progress"])
            torch.set_rng_state(state["torch_rng"].cpu())
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            detail = " ".join(str(error).split())[:300]
            raise ConfigError(f"cannot resume from {self.checkpoint_path}: "
                              f"{type(error).__name__}: {detail} (damaged, or written by another "
                              "version?); pass --force to start over") from None
        self.state = progress
        self.log.history = list(state.get("history", []))
        LOG.info("resumed from %s at epoch %d, step %d", self.checkpoint_path,
                 self.state.epoch + 1, self.state.global_step)

    # ------------------------------------------------------------------------ export
    def _export(self, stage: Stage, result: TrainingResult) -> TrainingResult:
        config = self.config
        model = stage.model.eval()
        provenance = {
            "source": f"trained by lutfuse_ros.training (lutfuse train {config.stage})",
            "stage": config.stage,
            "data": {"sources": self.store.describe(), "crop_size": config.data.crop_size,
                     "crops_per_epoch": config.data.crops_per_epoch,
                     "fixed_crops": config.data.fixed_crops, "flips": config.data.flips},
            "config": config.source_text,
            "epochs": self.state.epoch, "steps": self.state.global_step,
            "batch_size": config.train.batch_size, "world_size": self.dist.world_size,
            "wall_time_s": round(self.state.elapsed, 1), "device": str(self.device),
            "software": {"torch": torch.__version__, "lutfuse_commit": _git_commit()},
            **stage.provenance()}
        manifest = make_manifest(model, name=config.name,
                                 description=config.description or stage.description,
                                 provenance=provenance)
        validation = validate(model, manifest, config.validation, self.run_dir / "validation",
                              "cpu" if self.device.type == "cpu" else str(self.device),
                              self.progress)
        if validation is not None:
            markdown, means = validation
            manifest["metrics"] = {"dataset": str(resolve_path(config.validation.visible).parent),
                                   "pairs_max": config.validation.max_pairs,
                                   "means": {k: round(v, 4) for k, v in means.items()}}
            with atomic_output(self.run_dir / "metrics.md", overwrite=True) as temporary:
                temporary.write_text(markdown, encoding="utf-8")
            result.metrics_markdown = markdown
            print(markdown)
        self.log.write_curve()
        write_json_atomic(self.run_dir / "manifest.json", manifest)
        result.artifact = save_artifact(model, self.output, manifest, overwrite=self.force)
        LOG.info("wrote %s", result.artifact)
        return result


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None

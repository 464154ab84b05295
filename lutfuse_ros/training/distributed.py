"""Multi-process training under ``torchrun``: process group set-up and small collectives.

``torchrun --nproc_per_node=N -m lutfuse_ros.cli.main train ...`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; the engine then joins a
gloo (CPU) or NCCL (CUDA) process group and wraps the model in DistributedDataParallel.
Without those variables everything runs in one process.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from lutfuse_ros.errors import ConfigError

LOG = logging.getLogger(__name__)
#: how long a collective may wait for the other ranks.
COLLECTIVE_TIMEOUT = _dt.timedelta(minutes=10)


@dataclass
class DistContext:
    """Where this process stands in the process group (``world_size == 1``: no group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and the artifact."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (no-op in one process)."""
        if self.is_distributed:
            torch_dist.barrier()

    def all_gather_tensors(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Concatenate each tensor over the ranks along dim 0 (shapes must agree)."""
        if not self.is_distributed:
            return tensors
        gathered = []
        for tensor in tensors:
            parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
            torch_dist.all_gather(parts, tensor.contiguous())
            gathered.append(torch.cat(parts, dim=0))
        return gathered

    def mean(self, value: float, device: torch.device) -> float:
        """Mean of a float over the ranks."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        torch_dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size


def resolve_device(setting: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (this rank's GPU) when available, else CPU.

    Raises:
        ConfigError: CUDA requested but not available.
    """
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {setting!r} requested but CUDA is not available")
        if setting == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(setting)


def init_distributed(device_setting: str) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes, if any.

    Returns:
        ``(context, device)``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_setting, local_rank)
    context = DistContext(rank, world_size, local_rank)
    if world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        LOG.info("rank %d/%d joined the %s process group on %s", rank, world_size, backend, device)
    return context, device


def shutdown_distributed(context: DistContext) -> None:
    """Leave the process group."""
    if context.is_distributed and torch_dist.is_initialized():
        torch_dist.destroy_process_group()

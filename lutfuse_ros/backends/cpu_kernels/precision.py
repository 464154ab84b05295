"""Choosing the arithmetic precision of the fast CPU path.

``fp32`` reproduces the reference modules to float32 rounding. ``bf16`` runs the MM-LUT
context network's convolutions in bfloat16 (stored activations and weights; sums and
statistics accumulate in float32), about twice as fast on CPUs with native bf16 dot
products, and keeps the imported official checkpoint's colour output at >= 54 dB PSNR
against its fp32 result on the 50 RoadScene test images (not bit-exact: the official
outputs are reproduced at > 90 dB only in fp32, which is why fp32 is the torch backend's
default). ``auto`` picks ``bf16`` only where the CPU has native bf16 instructions
(AVX512-BF16 or AMX), else ``fp32``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lutfuse_ros.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")
#: /proc/cpuinfo flags that mean the CPU computes bf16 dot products natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags of the first CPU listed in ``cpuinfo`` (empty where unreadable)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether bf16 convolutions run natively (fast) on this CPU.

    Args:
        flags: CPU feature flags; None reads ``/proc/cpuinfo``.

    Returns:
        True when PyTorch's CPU kernels use AVX-512 (or better) and the CPU reports
        AVX512-BF16 or AMX-BF16. Without them PyTorch emulates bf16 and it is slower than fp32.
    """
    if flags is None:
        flags = cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability().upper()
    if not capability.startswith("AVX512"):
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, flags: frozenset[str] | None = None) -> str:
    """Turn a ``precision`` option into ``fp32`` or ``bf16``.

    Args:
        precision: ``fp32``, ``bf16`` or ``auto``.
        flags: CPU feature flags for ``auto`` (None reads ``/proc/cpuinfo``).

    Raises:
        ConfigError: unknown name.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16(flags) else "fp32"
    return precision


def torch_dtype(precision: str) -> torch.dtype:
    """The storage dtype of a resolved precision (``fp32`` or ``bf16``)."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]

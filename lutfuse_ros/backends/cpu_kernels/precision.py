"""Choosing the arithmetic precision of the fast CPU path.

``fp32`` reproduces the reference modules to float32 rounding. ``bf16`` runs the MM-LUT
context network's convolutions in bfloat16 (stored activations and weights; sums and
statistics accumulate in float32), about twice as fast on CPUs with native bf16 dot
products, and keeps the imported official checkpoint's colour output at >= 54 dB PSNR
against its fp32 result on the 50 RoadScene test images (not bit-exact: the official
outputs are reproduced at > 90 dB only in fp32, which is why fp32 is the torch backend's
default). ``auto`` picks ``bf16`` only where the CPU has native bf16 instructions
(AVX512-BF16 or AMX) and oneDNN's bf16 convolution runs, else ``fp32``.

Whether bf16 can run at all is decided by what torch/oneDNN can actually do, not only by
``/proc/cpuinfo``: :func:`bf16_unsupported_reason` runs the fast path's convolution once on a
tiny bf16 tensor (cached per process). oneDNN's bf16 convolution needs AVX512BW + AVX512VL +
AVX512DQ or AVX-NE-CONVERT; on an AVX2-only CPU (AMD EPYC before Zen 4, many Intel desktop
parts), or where oneDNN is capped with ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``, it raises
``mkldnn_convolution: bf16 path needs the cpu support avx_ne_convert or avx512bw, avx512vl
and avx512dq``. An explicit ``bf16`` is then a :class:`~lutfuse_ros.errors.ConfigError` at
configure time naming the missing CPU features, never an error on the first frame.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from lutfuse_ros.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")
#: /proc/cpuinfo flags that mean the CPU computes bf16 dot products natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: CPU features oneDNN's bf16 convolution needs: all of the first group, or the second.
BF16_CONV_AVX512_FLAGS = ("avx512bw", "avx512vl", "avx512dq")
BF16_CONV_ALTERNATIVE_FLAG = "avx_ne_convert"
#: Environment variables that cap the instruction set oneDNN uses.
ONEDNN_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


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


def cpu_lacks_bf16_conv_features(flags: frozenset[str]) -> bool:
    """Whether ``flags`` have neither feature group oneDNN's bf16 convolution needs."""
    return BF16_CONV_ALTERNATIVE_FLAG not in flags and \
        not all(flag in flags for flag in BF16_CONV_AVX512_FLAGS)


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
    return any(flag in flags for flag in NATIVE_BF16_FLAGS) and bf16_probe_error() is None


@functools.lru_cache(maxsize=1)
def bf16_probe_error() -> str | None:
    """Run the fast path's bf16 convolution once on a tiny tensor (cached per process).

    Returns:
        None when it runs, else torch's error message (oneDNN refuses bf16 on this CPU).
    """
    from lutfuse_ros.backends.cpu_kernels.conv_ops import conv3x3_leaky_relu, fused_conv_available

    x = torch.zeros(1, 8, 4, 4, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last)
    weight = torch.zeros(8, 8, 3, 3, dtype=torch.bfloat16).contiguous(
        memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            conv3x3_leaky_relu(x, weight, torch.zeros(8), 0.1, fused_conv_available())
    except RuntimeError as error:
        return str(error).splitlines()[0]
    return None


def bf16_unsupported_reason(flags: frozenset[str] | None = None,
                            environ: dict[str, str] | None = None) -> str | None:
    """Why bf16 cannot run here, naming the missing CPU features; None when it can.

    Args:
        flags: CPU feature flags; None reads ``/proc/cpuinfo``.
        environ: environment for the oneDNN ISA cap; None reads ``os.environ``.
    """
    error = bf16_probe_error()
    if error is None:
        return None
    flags = cpu_flags() if flags is None else flags
    environ = os.environ if environ is None else environ
    missing = [flag for flag in BF16_CONV_AVX512_FLAGS if flag not in flags]
    caps = [f"{name}={environ[name]}" for name in ONEDNN_ISA_VARIABLES if environ.get(name)]
    if cpu_lacks_bf16_conv_features(flags):
        cause = f"this CPU lacks {' '.join(missing)} and {BF16_CONV_ALTERNATIVE_FLAG}"
    elif caps:
        cause = f"oneDNN is capped below them by {', '.join(caps)}"
    else:
        cause = "oneDNN does not use them on this CPU"
    return (f"bf16 convolutions need the CPU features {'+'.join(BF16_CONV_AVX512_FLAGS)} or "
            f"{BF16_CONV_ALTERNATIVE_FLAG}; {cause} (torch: {error})")


def resolve_precision(precision: str, flags: frozenset[str] | None = None) -> str:
    """Turn a ``precision`` option into ``fp32`` or ``bf16``.

    Args:
        precision: ``fp32``, ``bf16`` or ``auto``.
        flags: CPU feature flags for ``auto`` (None reads ``/proc/cpuinfo``).

    Raises:
        ConfigError: unknown name, or ``bf16`` where this CPU (or oneDNN's ISA cap) cannot run
            bf16 convolutions; the message names the missing CPU features.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16(flags) else "fp32"
    if precision == "bf16":
        reason = bf16_unsupported_reason(flags)
        if reason is not None:
            raise ConfigError(f"precision 'bf16' cannot run here: {reason}; use precision "
                              "'fp32' or 'auto' (auto picks fp32 on this CPU)")
    return precision


def torch_dtype(precision: str) -> torch.dtype:
    """The storage dtype of a resolved precision (``fp32`` or ``bf16``)."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]

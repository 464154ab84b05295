"""``precision`` on CPUs without native bf16: a configure-time error or fp32, never a crash.

The project's target machines (AMD EPYC with AVX2, no AVX-512) cannot run oneDNN's bf16
convolutions. A child process reproduces that here with ``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN then refuses bf16 exactly as on such a CPU:
"mkldnn_convolution: bf16 path needs the cpu support avx_ne_convert or avx512bw, avx512vl and
avx512dq"); the child checks what a user would see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lutfuse_ros.backends.cpu_kernels.precision import cpu_flags, cpu_lacks_bf16_conv_features

REPO = Path(__file__).resolve().parents[2]
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

CHILD = r"""
import json
import numpy as np
import torch

from lutfuse_ros.backends.cpu_kernels.precision import (bf16_probe_error,
                                                        bf16_unsupported_reason,
                                                        resolve_precision)
from lutfuse_ros.backends.torch_backend import TorchBackend
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.model_loading import build_pipeline
from lutfuse_ros.settings.node_settings import parse_settings

result = {"capability": torch.backends.cpu.get_cpu_capability(),
          "probe_error": bf16_probe_error(), "auto": resolve_precision("auto"),
          "reason_without_avx512": bf16_unsupported_reason(frozenset({"avx2", "fma"}), {})}
try:
    build_pipeline(parse_settings({"backend": "torch",
                                   "backend_options": "{precision: bf16}"}, fill_defaults=True))
    result["configure_bf16"] = "accepted"
except ConfigError as error:
    result["configure_bf16"] = "ConfigError: " + str(error)
pipeline = FusionPipeline.from_artifact("lutfuse-mmlut", backend="torch", precision="auto")
rng = np.random.default_rng(0)
fused = pipeline.fuse(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                      rng.integers(0, 256, (48, 64), dtype=np.uint8))
result["auto_fused"] = [list(fused.shape), str(fused.dtype)]
result["auto_backend"] = pipeline.backend.describe()
print("RESULT " + json.dumps(result))
"""


def run_child(extra_env: dict[str, str]) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    python_path = [str(REPO), env.get("PYTHONPATH")]
    env.update(extra_env, PYTHONPATH=os.pathsep.join(filter(None, python_path)))
    done = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_avx2_cpu_bf16_is_a_configure_time_error_and_auto_runs_fp32():
    result = run_child(AVX2_ENV)
    # The environment really reproduces the AVX2 machine: oneDNN refuses bf16 convolutions.
    assert result["capability"] == "AVX2"
    assert result["probe_error"] and "bf16 path needs the cpu support" in result["probe_error"]
    # An explicit bf16 fails configure (build_pipeline) naming the missing CPU features.
    message = result["configure_bf16"]
    assert message.startswith("ConfigError: "), message
    assert "'backend_options'" in message and "precision 'bf16' cannot run here" in message
    assert "avx512bw+avx512vl+avx512dq or avx_ne_convert" in message
    # The cause named is the one that holds: the CPU's own flags where it lacks them (a real
    # AVX2 machine), else the oneDNN cap this test sets.
    if cpu_lacks_bf16_conv_features(cpu_flags()):
        assert "this CPU lacks" in message, message
    else:
        assert "ONEDNN_MAX_CPU_ISA=AVX2" in message, message
    # On a real AVX2 CPU the flags themselves are missing, and the message says so.
    assert "this CPU lacks avx512bw avx512vl avx512dq and avx_ne_convert" in \
        result["reason_without_avx512"]
    # auto picks what runs: fp32, and it fuses.
    assert result["auto"] == "fp32" and "fp32" in result["auto_backend"]
    assert result["auto_fused"] == [[48, 64, 3], "uint8"]


def test_without_the_cap_bf16_follows_what_this_cpu_can_do():
    result = run_child({})
    if result["probe_error"] is not None:
        pytest.skip(f"this CPU cannot run bf16 convolutions either: {result['probe_error']}")
    assert result["configure_bf16"] == "accepted"

"""Timing the full uint8 -> uint8 pipeline for backends x models x resolutions.

Every case of one (model, resolution) group is timed *interleaved* (one frame of each case in
turn, repeated), together with the family's official-approach baseline, so that load from
other processes hits all of them alike and their ratios stay meaningful on a shared machine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from lutfuse_ros.artifacts import Artifact
from lutfuse_ros.backends import available_backends
from lutfuse_ros.backends.cpu_kernels.precision import cpu_has_native_bf16
from lutfuse_ros.families import build_baseline
from lutfuse_ros.demo_scene import make_demo_pair
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.pipeline import FusionPipeline, StageTimings
from lutfuse_ros.preprocessing import ThermalNormaliser

_LOG = logging.getLogger(__name__)

#: The resolutions of the issue's table, ``(width, height)``.
DEFAULT_RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
BASELINE_LABEL = "official approach"
#: Turns per case in the interleaved timing, and the pause after each turn.
TURNS = 5
TURN_PAUSE_S = 0.05


@dataclass(frozen=True)
class BackendSpec:
    """A backend name plus options, written ``name`` or ``name:key=value,key=value``."""

    name: str
    options: tuple[tuple[str, object], ...] = ()

    @property
    def label(self) -> str:
        """``name`` or ``name[key=value,...]`` for tables."""
        if not self.options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.options)}]"

    @classmethod
    def parse(cls, text: str) -> "BackendSpec":
        """Parse ``torch:precision=bf16,threads=2``; values are int, float, bool or str.

        Raises:
            ConfigError: malformed option.
        """
        name, _, rest = text.partition(":")
        options = []
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"backend option {item!r} in {text!r} is not key=value")
            options.append((key, _parse_value(value)))
        return cls(name.strip(), tuple(options))


def _parse_value(value: str) -> object:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _torch_variants(device: str) -> list[BackendSpec]:
    if device.startswith("cuda"):
        return [BackendSpec("torch", (("precision", "fp32"),)),
                BackendSpec("torch", (("precision", "fp16"),))]
    specs = [BackendSpec("torch", (("precision", "fp32"),))]
    if cpu_has_native_bf16():
        specs.append(BackendSpec("torch", (("precision", "bf16"),)))
    return specs


#: backend name -> the option variants worth timing (others: default options only).
BACKEND_VARIANTS = {"torch": _torch_variants}


def default_backend_specs(device: str = "cpu") -> list[BackendSpec]:
    """Every available backend on ``device``, with its interesting option variants."""
    specs: list[BackendSpec] = []
    for name in available_backends(device):
        variants = BACKEND_VARIANTS.get(name)
        specs.extend(variants(device) if variants else [BackendSpec(name)])
    return specs


def parse_resolution(text: str) -> tuple[int, int]:
    """``640x480`` -> ``(640, 480)`` (width, height).

    Raises:
        ConfigError: malformed or non-positive.
    """
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"resolution must look like 640x480, got {text!r}") from None
    if width < 2 or height < 2:
        raise ConfigError(f"resolution must be at least 2x2, got {text!r}")
    return width, height


@dataclass
class CaseResult:
    """Latencies of one (model, backend, resolution) case, in milliseconds."""

    model: str
    family: str
    backend: str
    width: int
    height: int
    status: str = "ok"
    reason: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    stages_ms: dict[str, float] = field(default_factory=dict)
    speedup_vs_baseline: float | None = None

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else float("nan")

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else float("nan")

    @property
    def fps(self) -> float:
        """Frames per second from the mean latency."""
        return 1e3 / float(np.mean(self.latencies_ms)) if self.latencies_ms else float("nan")

    def to_json(self) -> dict:
        """Summary (no raw latencies) for the JSON report."""
        return {"model": self.model, "family": self.family, "backend": self.backend,
                "resolution": f"{self.width}x{self.height}", "status": self.status,
                "reason": self.reason, "iterations": len(self.latencies_ms),
                "p50_ms": _round(self.p50_ms), "p99_ms": _round(self.p99_ms),
                "min_ms": _round(min(self.latencies_ms)) if self.latencies_ms else None,
                "fps": _round(self.fps), "stages_ms": {k: _round(v) for k, v in
                                                       self.stages_ms.items()},
                "speedup_vs_baseline": _round(self.speedup_vs_baseline)}


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 3)


def benchmark_inputs(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic ``(H, W, 3)`` uint8 BGR visible and ``(H, W)`` uint8 thermal frame."""
    visible, thermal16 = make_demo_pair(height=height, width=width)
    return visible, ThermalNormaliser()(thermal16)


class _Timed:
    """One timed case: a callable fusing a pair, and where its samples go."""

    def __init__(self, result: CaseResult, fuse) -> None:
        self.result = result
        self.fuse = fuse
        self.stage_samples: list[StageTimings] = []


def _pipeline_case(pipeline: FusionPipeline, result: CaseResult) -> _Timed:
    timed = _Timed(result, None)

    def fuse(visible: np.ndarray, thermal: np.ndarray) -> np.ndarray:
        fused, stages = pipeline.fuse_timed(visible, thermal)
        timed.stage_samples.append(stages)
        return fused

    timed.fuse = fuse
    return timed


def run_benchmark(artifacts: list[Artifact], backends: list[BackendSpec],
                  resolutions: list[tuple[int, int]], iterations: int = 50, warmup: int = 5,
                  device: str = "cpu", baseline: bool = True, progress: bool = True,
                  ) -> list[CaseResult]:
    """Time every backend x model x resolution, plus each family's baseline.

    A backend that fails to build for a model is skipped with its reason logged and recorded
    (``status="skipped"``); a failure while running is recorded as ``status="failed"``.

    Args:
        artifacts: the models to time.
        backends: backend specs (see :func:`default_backend_specs`).
        resolutions: ``(width, height)`` pairs.
        iterations: timed frames per case.
        warmup: untimed frames per case first.
        device: backend device.
        baseline: also time the official-approach baseline of each family.
        progress: show a progress bar.

    Returns:
        One :class:`CaseResult` per case, baselines included (backend ``official approach``).
    """
    if iterations < 1 or warmup < 0:
        raise ConfigError(f"need iterations >= 1 and warmup >= 0, got {iterations}, {warmup}")
    results: list[CaseResult] = []
    total = len(artifacts) * len(resolutions) * (iterations + warmup)
    bar = tqdm(total=total, desc="bench", unit="round", disable=not progress)
    for artifact in artifacts:
        pipelines = {}
        for spec in backends:
            try:
                pipelines[spec] = FusionPipeline.from_artifact(artifact, backend=spec.name,
                                                               device=device,
                                                               **dict(spec.options))
            except Exception as error:  # any runtime may fail in its own way: report, go on
                _LOG.warning("skipping backend %s for %s: %s", spec.label, artifact.name, error)
                pipelines[spec] = error
        reference = build_baseline(artifact.build_model()) if baseline else None
        for width, height in resolutions:
            cases = []
            for spec, pipeline in pipelines.items():
                result = CaseResult(artifact.name, artifact.family, spec.label, width, height)
                results.append(result)
                if isinstance(pipeline, Exception):
                    result.status, result.reason = "skipped", str(pipeline)
                else:
                    cases.append(_pipeline_case(pipeline, result))
            if reference is not None:
                result = CaseResult(artifact.name, artifact.family, BASELINE_LABEL, width,
                                    height)
                results.append(result)
                cases.append(_Timed(result, reference.fuse))
            _time_interleaved(cases, benchmark_inputs(width, height), iterations, warmup, bar)
            _summarise(cases, reference is not None)
    bar.close()
    return results


def _time_interleaved(cases: list[_Timed], inputs: tuple[np.ndarray, np.ndarray],
                      iterations: int, warmup: int, bar: tqdm) -> None:
    """Warm every case up, then time them in turns of a few frames each.

    Turns of several consecutive frames (rather than one frame per case) keep each runtime's
    thread pool and caches warm while it is timed; the first frame of each turn is not
    timed, and a short pause between turns lets spinning worker threads of the previous
    runtime go idle.
    """
    live = [case for case in cases if case.result.status == "ok"]
    for case in live:
        for _ in range(warmup):
            _run_once(case, inputs, record=False)
        bar.update(warmup / max(len(live), 1))
    turns = min(iterations, TURNS)
    for turn in range(turns):
        frames = iterations // turns + (1 if turn < iterations % turns else 0)
        for case in live:
            if case.result.status != "ok":
                continue
            _run_once(case, inputs, record=False)
            for _ in range(frames):
                _run_once(case, inputs, record=True)
            time.sleep(TURN_PAUSE_S)
        bar.update(frames)


def _run_once(case: _Timed, inputs: tuple[np.ndarray, np.ndarray], record: bool) -> None:
    if case.result.status != "ok":
        return
    samples_before = len(case.stage_samples)
    start = time.perf_counter()
    try:
        case.fuse(*inputs)
    except Exception as error:  # record and keep timing the others
        _LOG.warning("%s failed at %dx%d: %s", case.result.backend, case.result.width,
                     case.result.height, error)
        case.result.status, case.result.reason = "failed", str(error)
        return
    elapsed = (time.perf_counter() - start) * 1e3
    if record:
        case.result.latencies_ms.append(elapsed)
    else:
        del case.stage_samples[samples_before:]


def _summarise(cases: list[_Timed], with_baseline: bool) -> None:
    for case in cases:
        if case.stage_samples:
            case.result.stages_ms = {
                name: float(np.median([getattr(s, f"{name}_ms") for s in case.stage_samples]))
                for name in ("preprocess", "model", "postprocess")}
    if not with_baseline:
        return
    baseline = cases[-1].result
    if baseline.status != "ok":
        return
    for case in cases:
        if case.result.status == "ok":
            case.result.speedup_vs_baseline = baseline.p50_ms / case.result.p50_ms

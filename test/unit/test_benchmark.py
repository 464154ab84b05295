"""Benchmark library and ``lutfuse bench``: cases, skipped backends, baselines, reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.benchmark import (BASELINE_LABEL, BackendSpec, benchmark_inputs,
                                   default_backend_specs, parse_resolution, run_benchmark,
                                   write_reports)
from lutfuse_ros.cli.main import main
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.families.mmlut.baseline import OfficialApproachMMLUT
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig


def test_backend_specs_and_resolutions_parse():
    spec = BackendSpec.parse("torch:precision=bf16,threads=2,fast_path=false")
    assert spec.name == "torch"
    assert dict(spec.options) == {"precision": "bf16", "threads": 2, "fast_path": False}
    assert spec.label == "torch[precision=bf16,threads=2,fast_path=False]"
    assert BackendSpec.parse("onnxruntime").label == "onnxruntime"
    with pytest.raises(ConfigError, match="key=value"):
        BackendSpec.parse("torch:precision")
    assert parse_resolution("640x480") == (640, 480)
    for bad in ("640", "0x480", "axb"):
        with pytest.raises(ConfigError, match="resolution"):
            parse_resolution(bad)
    labels = [s.label for s in default_backend_specs("cpu")]
    assert "torch[precision=fp32]" in labels


def test_run_benchmark_times_cases_skips_broken_backends_and_adds_baselines():
    artifacts = [load_artifact("lutfuse-mini"), load_artifact("lutfuse-mmlut")]
    backends = [BackendSpec.parse("torch:precision=fp32"), BackendSpec.parse("no-such-runtime")]
    results = run_benchmark(artifacts, backends, [(40, 30)], iterations=3, warmup=1,
                            progress=False)
    by_backend = {(r.model, r.backend): r for r in results}
    assert len(results) == 2 * 3
    for model in ("lutfuse-mini", "lutfuse-mmlut"):
        timed = by_backend[model, "torch[precision=fp32]"]
        assert timed.status == "ok" and len(timed.latencies_ms) == 3
        assert set(timed.stages_ms) == {"preprocess", "model", "postprocess"}
        assert timed.speedup_vs_baseline and timed.speedup_vs_baseline > 0
        broken = by_backend[model, "no-such-runtime"]
        assert broken.status == "skipped" and "unknown backend" in broken.reason
        baseline = by_backend[model, BASELINE_LABEL]
        assert baseline.status == "ok" and baseline.p99_ms >= baseline.p50_ms > 0


def test_official_approach_baseline_computes_the_same_fusion():
    torch.manual_seed(0)
    model = MMLUT(bins=16, context_channels=8).eval()
    with torch.no_grad():
        model.lut.normal_(0.5, 0.2)
    visible, thermal = benchmark_inputs(48, 36)
    from lutfuse_ros.artifacts import Artifact, make_manifest

    artifact = Artifact(None, make_manifest(model, name="t", description="t", provenance={}),
                        model.state_dict())
    package = FusionPipeline.from_artifact(artifact, precision="fp32",
                                           config=PipelineConfig(rounding="truncate"))
    baseline = OfficialApproachMMLUT(model).fuse(visible, thermal)
    difference = np.abs(baseline.astype(int) - package.fuse(visible, thermal))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_reports_are_written_once_and_the_cli_refuses_to_overwrite(tmp_path):
    out = tmp_path / "bench"
    argv = ["bench", "--out", str(out), "--models", "lutfuse-mini", "--backends",
            "torch:precision=fp32", "--resolutions", "32x24", "--iterations", "2",
            "--warmup", "0"]
    assert main(argv) == 0
    report = json.loads((out / "bench.json").read_text())
    assert report["settings"]["resolutions"] == ["32x24"]
    backends = {r["backend"] for r in report["results"]}
    assert backends == {"torch[precision=fp32]", BASELINE_LABEL}
    assert "| 32x24 | torch[precision=fp32] |" in (out / "bench.md").read_text()
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 1                       # exists: refused without --force
    assert main(argv + ["--force"]) == 0
    with pytest.raises(FileExistsError):
        write_reports([], {}, {}, out)

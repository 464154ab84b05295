"""torch vs ONNX Runtime: raw fused luma and uint8 pipeline output agree within 1/255.

The reference runs the artifact's own PyTorch module (``artifact.build_model()``) behind the
backend interface, so it stays the plain FP32 model whatever options other backends grow.
Real RoadScene test pairs, shipped artifacts and the imported official checkpoints.
"""

import logging

import numpy as np
import pytest
import torch

from lutfuse_ros.artifacts import Artifact, load_artifact
from lutfuse_ros.backends import create_backend
from lutfuse_ros.backends.base import InferenceBackend
from lutfuse_ros.backends.onnx_backend import OnnxRuntimeBackend
from lutfuse_ros.cli.main import main
from lutfuse_ros.errors import BackendError, ConfigError
from lutfuse_ros.image_io import read_thermal, read_visible
from lutfuse_ros.pipeline import FusionPipeline

TOLERANCE = 1.0 / 255.0
QUICK_PAIRS = 5


class ModuleBackend(InferenceBackend):
    """The artifact's PyTorch module in FP32 eval mode: the parity reference."""

    name = "module"

    def __init__(self, artifact: Artifact, device: str = "cpu", **options) -> None:
        super().__init__(artifact, device, **options)
        self.model = artifact.build_model()

    def infer(self, visible_rgb, infrared):
        with torch.inference_mode():
            fused = self.model(torch.from_numpy(visible_rgb), torch.from_numpy(infrared))
        return fused[0, 0].numpy()


def _pairs(shared_dir, limit=None):
    folder = shared_dir / "data" / "roadscene" / "test"
    names = sorted(p.name for p in (folder / "vi").iterdir())[:limit]
    return [(name, read_visible(folder / "vi" / name), read_thermal(folder / "ir" / name))
            for name in names]


@pytest.fixture(scope="module")
def quick_pairs(shared_dir):
    return _pairs(shared_dir, QUICK_PAIRS)


@pytest.fixture(scope="module")
def artifacts(request):
    """Loader of artifacts by name; the official ones skip when ../shared is missing."""
    def get(name):
        if name.startswith("official"):
            return load_artifact(request.getfixturevalue(f"{name}_artifact"))
        return load_artifact(name)
    return get


#: (artifact, lut_op); the quick run checks the non-default GridSample LUT on the steep
#: official table only, the slow run everything.
QUICK_CASES = [("lutfuse-mmlut", "gather"), ("lutfuse-mini", "gather"),
               ("official_lut", "gather"), ("official_lut", "gridsample"),
               ("official_mini", "gather")]
CASES = [*QUICK_CASES, ("lutfuse-mmlut", "gridsample")]


class Recording(InferenceBackend):
    """Delegates to another backend and keeps its last raw output."""

    def __init__(self, inner: InferenceBackend) -> None:
        super().__init__(inner.artifact, inner.device)
        self.inner, self.name, self.last = inner, inner.name, None

    def infer(self, visible_rgb, infrared):
        self.last = self.inner.infer(visible_rgb, infrared)
        return self.last


def _check_parity(artifact, lut_op, pairs):
    reference = Recording(ModuleBackend(artifact))
    candidate = Recording(OnnxRuntimeBackend(artifact, lut_op=lut_op))
    reference_pipeline, candidate_pipeline = FusionPipeline(reference), FusionPipeline(candidate)
    worst_luma = 0.0
    for name, visible, thermal in pairs:
        fused = candidate_pipeline.fuse(visible, thermal).astype(int)
        pixel_error = np.abs(fused - reference_pipeline.fuse(visible, thermal)).max()
        luma_error = np.abs(candidate.last - reference.last).max()
        assert luma_error <= TOLERANCE, f"{name}: raw fused luma differs by {luma_error:.2e}"
        assert pixel_error <= 1, f"{name}: uint8 output differs by {pixel_error} levels"
        worst_luma = max(worst_luma, luma_error)
    return worst_luma


@pytest.mark.parametrize("name,lut_op", QUICK_CASES)
def test_onnxruntime_matches_torch_on_real_pairs(artifacts, quick_pairs, name, lut_op):
    worst_luma = _check_parity(artifacts(name), lut_op, quick_pairs)
    # The runtimes agree far inside 1/255: float32 summation order in the convolutions,
    # amplified by the steep official table to at most 2.5e-4 over all 50 pairs.
    assert worst_luma < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name,lut_op", CASES)
def test_onnxruntime_matches_torch_on_all_50_pairs(artifacts, shared_dir, name, lut_op):
    pairs = _pairs(shared_dir)
    assert len(pairs) == 50
    _check_parity(artifacts(name), lut_op, pairs)


@pytest.fixture
def synthetic_pair():
    rng = np.random.default_rng(7)
    return (rng.integers(0, 256, (45, 67, 3), dtype=np.uint8),
            rng.integers(0, 256, (45, 67), dtype=np.uint8))


def test_pipeline_from_artifact_with_onnxruntime_and_auto(synthetic_pair):
    visible, thermal = synthetic_pair
    onnx = FusionPipeline.from_artifact("lutfuse-mini", backend="onnxruntime")
    assert onnx.backend.name == "onnxruntime"
    assert onnx.backend.providers[0] == "CPUExecutionProvider"
    torch_pipeline = FusionPipeline.from_artifact("lutfuse-mini", backend="torch")
    auto = FusionPipeline.from_artifact("lutfuse-mini", backend="auto")
    assert auto.backend.name in ("torch", "onnxruntime")
    expected = torch_pipeline.fuse(visible, thermal).astype(int)
    for pipeline in (onnx, auto):
        fused = pipeline.fuse(visible, thermal)
        assert fused.shape == visible.shape and np.abs(fused - expected).max() <= 1


def test_onnx_path_option_reads_an_exported_file(tmp_path, synthetic_pair):
    visible, thermal = synthetic_pair
    path = tmp_path / "mmlut.onnx"
    assert main(["export", "onnx", "lutfuse-mmlut", "-o", str(path)]) == 0
    pipeline = FusionPipeline.from_artifact("lutfuse-mmlut", backend="onnxruntime",
                                            onnx_path=str(path))
    assert pipeline.backend.exported.path == path
    expected = FusionPipeline(ModuleBackend(load_artifact("lutfuse-mmlut"))).fuse(visible, thermal)
    assert np.abs(pipeline.fuse(visible, thermal).astype(int) - expected).max() <= 1
    with pytest.raises(BackendError, match="lutfuse export onnx lutfuse-mini"):
        FusionPipeline.from_artifact("lutfuse-mini", backend="onnxruntime", onnx_path=str(path))


def test_session_options_and_cpu_fallback(caplog):
    artifact = load_artifact("lutfuse-mini")
    backend = OnnxRuntimeBackend(artifact, threads=1, graph_optimization="basic")
    assert backend.session.get_session_options().intra_op_num_threads == 1
    assert "onnxruntime on cpu" in backend.describe()
    with pytest.raises(ConfigError, match="graph_optimization"):
        OnnxRuntimeBackend(artifact, graph_optimization="max")
    with pytest.raises(ConfigError, match="threads"):
        OnnxRuntimeBackend(artifact, threads=0)
    import onnxruntime
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime has CUDA here; the fallback path is not reachable")
    with caplog.at_level(logging.WARNING):
        fallback = OnnxRuntimeBackend(artifact, device="cuda")
    assert fallback.providers == ("CPUExecutionProvider",)
    assert "falling back to CPUExecutionProvider" in caplog.text
    with pytest.raises(BackendError, match="not available"):
        create_backend("onnxruntime", artifact, device="cuda")

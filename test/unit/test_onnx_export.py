"""ONNX export: LUT formulations, graph IO and metadata, TensorRT op allow-list, CLI."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from lutfuse_ros.artifacts import MANIFEST_KEY, load_artifact
from lutfuse_ros.cli.main import main
from lutfuse_ros.errors import ArtifactError, BackendError
from lutfuse_ros.families.mmlut.export_ops import LUT_OPS, make_lookup
from lutfuse_ros.export.onnx_export import (ExportGraph, check_onnx_matches, export_onnx,
                                            load_onnx, load_or_export_onnx, parse_onnx,
                                            weights_sha256)
from lutfuse_ros.export.tensorrt_ops import tensorrt_problems
from lutfuse_ros.families.mmlut.lattice import quadrilinear_lookup

SHIPPED = ("lutfuse-mmlut", "lutfuse-mini")


@pytest.fixture(scope="module")
def exports():
    """(shipped name, lut_op) -> ExportedOnnx, exported once per module."""
    return {(name, op): export_onnx(load_artifact(name), op)
            for name in SHIPPED for op in LUT_OPS}


def _coords(bins, shape, seed):
    generator = torch.Generator().manual_seed(seed)
    coords = [torch.rand(shape, generator=generator) * (bins + 2) - 1.0 for _ in range(4)]
    # lattice points, the top point, inside the flat top bin, beyond both ends
    coords[0].view(-1)[:5] = torch.tensor([0.0, bins - 1.0, bins - 0.5, bins + 3.0, -2.0])
    coords[3].view(-1)[:5] = torch.tensor([bins - 1.0, 0.0, 1.0, bins - 1.0, bins - 1e-4])
    return tuple(coords)


@pytest.mark.parametrize("bins", [2, 5, 16, 17])
def test_gather_lookup_matches_reference_including_the_flat_top_bin(bins):
    table = torch.randn(bins, bins, bins, bins, generator=torch.Generator().manual_seed(bins))
    coords = _coords(bins, (1, 1, 23, 29), seed=bins)
    expected = quadrilinear_lookup(table, coords)
    assert (make_lookup(table, "gather")(coords) - expected).abs().max() < 2e-6


@pytest.mark.parametrize("bins", [2, 5, 16, 17])
def test_gridsample_lookup_matches_reference_to_grid_precision(bins):
    # A float32 grid addresses the folded image to ~1e-5 of a cell; values of a unit-range
    # random table move by at most ~1 per cell.
    table = torch.rand(bins, bins, bins, bins, generator=torch.Generator().manual_seed(bins))
    coords = _coords(bins, (1, 1, 23, 29), seed=bins + 1)
    expected = quadrilinear_lookup(table, coords)
    assert (make_lookup(table, "gridsample")(coords) - expected).abs().max() < 3e-5


def test_unknown_lut_op_is_rejected():
    with pytest.raises(ValueError, match="lut_op"):
        make_lookup(torch.zeros(3, 3, 3, 3), "trilinear")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("lut_op", LUT_OPS)
def test_graph_io_opset_and_dynamic_size(exports, name, lut_op):
    model = onnx.load_from_string(exports[name, lut_op].data)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    outputs = {o.name: o.type.tensor_type for o in model.graph.output}
    assert list(inputs) == ["visible", "infrared"] and list(outputs) == ["fused_luma"]
    for tensor, channels in ((inputs["visible"], 3), (inputs["infrared"], 1),
                             (outputs["fused_luma"], 1)):
        assert tensor.elem_type == TensorProto.FLOAT
        dims = tensor.shape.dim
        assert [d.dim_value for d in dims[:2]] == [1, channels]
        assert [d.dim_param for d in dims[2:]] == ["height", "width"]


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("lut_op", LUT_OPS)
@pytest.mark.parametrize("size", [(2, 2), (37, 61), (64, 48)])
def test_onnxruntime_matches_torch_at_any_size(exports, name, lut_op, size):
    artifact = load_artifact(name)
    rng = np.random.default_rng(sum(size))
    visible = rng.random((1, 3, *size), dtype=np.float32)
    infrared = rng.random((1, 1, *size), dtype=np.float32)
    with torch.no_grad():
        expected = artifact.build_model()(torch.from_numpy(visible), torch.from_numpy(infrared))
    session = ort.InferenceSession(exports[name, lut_op].data,
                                   providers=["CPUExecutionProvider"])
    fused = session.run(None, {"visible": visible, "infrared": infrared})[0]
    assert fused.shape == (1, 1, *size)
    assert np.abs(fused - expected.numpy()).max() < 1e-5


def test_manifest_and_weights_hash_are_embedded(exports):
    artifact = load_artifact("lutfuse-mmlut")
    exported = exports["lutfuse-mmlut", "gather"]
    metadata = {p.key: p.value for p in onnx.load_from_string(exported.data).metadata_props}
    assert json.loads(metadata[MANIFEST_KEY]) == artifact.manifest
    assert metadata["lutfuse_weights_sha256"] == weights_sha256(artifact.state_dict)
    assert metadata["lutfuse_lut_op"] == "gather"
    parsed = parse_onnx(exported.data)
    assert parsed.manifest == artifact.manifest and parsed.sha256 == exported.sha256
    assert parsed.fp16_scopes == ("/context/",)


def test_export_is_deterministic_and_the_hash_tracks_the_weights(exports):
    artifact = load_artifact("lutfuse-mini")
    assert export_onnx(artifact, "gather").sha256 == exports["lutfuse-mini", "gather"].sha256
    changed = load_artifact("lutfuse-mini")
    changed.state_dict["conv2.1.bias"] = changed.state_dict["conv2.1.bias"] + 0.01
    assert weights_sha256(changed.state_dict) != weights_sha256(artifact.state_dict)
    assert export_onnx(changed, "gather").sha256 != exports["lutfuse-mini", "gather"].sha256


def test_onnx_of_other_weights_is_refused_with_the_export_command(exports, tmp_path):
    path = tmp_path / "mini.onnx"
    path.write_bytes(exports["lutfuse-mini", "gather"].data)
    check_onnx_matches(load_onnx(path), load_artifact("lutfuse-mini"))
    with pytest.raises(BackendError, match=r"lutfuse export onnx lutfuse-mmlut -o .*mini\.onnx"):
        check_onnx_matches(load_onnx(path), load_artifact("lutfuse-mmlut"))
    with pytest.raises(BackendError, match="lutfuse export onnx lutfuse-mini -o"):
        load_or_export_onnx(load_artifact("lutfuse-mini"), tmp_path / "missing.onnx")


def test_foreign_onnx_is_rejected(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    with pytest.raises(ArtifactError, match="not exported by 'lutfuse export onnx'"):
        parse_onnx(helper.make_model(graph).SerializeToString())
    with pytest.raises(ArtifactError, match="not a readable ONNX model"):
        parse_onnx(b"\x00garbage" * 10)


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("lut_op", LUT_OPS)
def test_exported_graph_passes_the_tensorrt_allow_list(exports, name, lut_op):
    model = onnx.load_from_string(exports[name, lut_op].data)
    assert tensorrt_problems(model) == []
    ops = {node.op_type for node in model.graph.node}
    if name == "lutfuse-mmlut":
        assert ("GridSample" in ops) == (lut_op == "gridsample")
        assert "InstanceNormalization" in ops
    assert "Pad" not in ops  # reflection padding is exported as slices


def test_teacher_exports_but_its_bicubic_resize_is_flagged():
    from lutfuse_ros.families.teacher.model import FusionTeacher
    from lutfuse_ros.artifacts import Artifact, make_manifest

    model = FusionTeacher(width=4)
    manifest = make_manifest(model, name="tiny-teacher", description="test", provenance={})
    artifact = Artifact(path=None, manifest=manifest, state_dict=model.state_dict())
    exported = export_onnx(artifact)
    problems = tensorrt_problems(onnx.load_from_string(exported.data))
    assert len(problems) == 1 and "Resize mode 'cubic'" in problems[0]
    visible, infrared = np.random.rand(1, 3, 21, 34), np.random.rand(1, 1, 21, 34)
    session = ort.InferenceSession(exported.data, providers=["CPUExecutionProvider"])
    fused = session.run(None, {"visible": visible.astype(np.float32),
                               "infrared": infrared.astype(np.float32)})[0]
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(visible).float(),
                                torch.from_numpy(infrared).float())
    assert np.abs(fused - expected.numpy()).max() < 1e-5


def _model_with(node, inputs, output_shape):
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info(n, 1, s) for n, s in inputs],
                              [helper.make_tensor_value_info(node.output[0], 1, output_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_allow_list_rejects_5d_grid_sample_unknown_ops_and_reflect_pad():
    grid5d = helper.make_node("GridSample", ["x", "g"], ["y"], mode="bilinear")
    problems = tensorrt_problems(_model_with(grid5d, [("x", [1, 1, 4, 4, 4]),
                                                      ("g", [1, 2, 2, 2, 3])], [1, 1, 2, 2, 2]))
    assert any("rank 5" in p and "rank-4" in p for p in problems)
    nonzero = helper.make_node("NonZero", ["x"], ["y"])
    assert any("NonZero is not imported natively" in p
               for p in tensorrt_problems(_model_with(nonzero, [("x", [4])], [1, 4])))
    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    pad = helper.make_node("Pad", ["x", "pads"], ["y"], mode="reflect")
    model = _model_with(pad, [("x", [1, 1, 4, 4])], [1, 1, 6, 6])
    model.graph.initializer.append(pads)
    assert any("Pad mode 'reflect'" in p for p in tensorrt_problems(model))


def test_lookup_formulations_match_the_model_on_real_images(official_lut_artifact, shared_dir):
    from lutfuse_ros.image_io import read_thermal, read_visible

    model = load_artifact(official_lut_artifact).build_model()
    graphs = {op: ExportGraph(model, op).eval() for op in LUT_OPS}
    folder = shared_dir / "data" / "roadscene" / "test"
    for visible_path in sorted((folder / "vi").iterdir())[:3]:
        visible = read_visible(visible_path)[..., ::-1].transpose(2, 0, 1)[None] / 255.0
        thermal = read_thermal(folder / "ir" / visible_path.name)[None, None] / 255.0
        inputs = (torch.from_numpy(visible.astype(np.float32)),
                  torch.from_numpy(thermal.astype(np.float32)))
        with torch.no_grad():
            expected = model(*inputs)
            assert (graphs["gather"](*inputs) - expected).abs().max() < 1e-5
            # steep official table (up to 7.7 per cell): grid precision costs up to ~4e-5
            assert (graphs["gridsample"](*inputs) - expected).abs().max() < 5e-5


def test_cli_export_onnx_writes_once_and_needs_force(tmp_path, capsys):
    destination = tmp_path / "models" / "mini.onnx"
    assert main(["export", "onnx", "lutfuse-mini", "-o", str(destination)]) == 0
    exported = load_onnx(destination)
    assert exported.family == "mini" and exported.name == "lutfuse-mini"
    before = destination.read_bytes()
    assert main(["export", "onnx", "lutfuse-mmlut", "-o", str(destination)]) == 1
    assert "--force" in capsys.readouterr().err
    assert destination.read_bytes() == before
    assert main(["export", "onnx", "lutfuse-mmlut", "-o", str(destination), "--force",
                 "--lut-op", "gridsample"]) == 0
    assert load_onnx(destination).lut_op == "gridsample"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["mini.onnx"]

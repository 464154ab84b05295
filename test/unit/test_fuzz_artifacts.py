"""Property-based tests: a broken model file is refused with ArtifactError, never loaded wrong.

Hypothesis truncates real artifacts at random offsets, flips single bits anywhere in them
(safetensors header, lutfuse manifest, tensor bytes), rewrites them with wrong shapes, NaN/inf
weights, a mutated or missing manifest, and hands the loader foreign safetensors, ONNX files
and random bytes. :func:`~lutfuse_ros.artifacts.load_artifact` and
:meth:`~lutfuse_ros.pipeline.FusionPipeline.from_artifact` must raise
:class:`~lutfuse_ros.errors.ArtifactError` naming the file, or load exactly what was saved.
ONNX files given to the onnxruntime backend are refused with its documented
:class:`~lutfuse_ros.errors.BackendError`.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from lutfuse_ros.artifacts import (
    INTEGRITY_KEY,
    MANIFEST_KEY,
    Artifact,
    load_artifact,
    make_manifest,
    save_artifact,
)
from lutfuse_ros.errors import ArtifactError, BackendError, LutfuseError
from lutfuse_ros.families.mini.model import MiniFusionNet
from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.pipeline import FusionPipeline

FAST = settings(max_examples=60, deadline=timedelta(seconds=3),
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


class Files(dict):
    """A fixture's dict of file contents, printed briefly in hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<{', '.join(self)}>"


def saved(model: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    for parameter in model.parameters():
        torch.nn.init.uniform_(parameter, -0.5, 0.5)
    manifest = make_manifest(model, name=path.stem, description="fuzz target",
                             provenance={"source": "test_fuzz_artifacts"})
    return save_artifact(model, path, manifest)


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, tuple[bytes, Artifact]]:
    """Artifact name -> (file bytes, loaded artifact) for a mini-model and a small MM-LUT."""
    folder = tmp_path_factory.mktemp("artifacts")
    files = {"mini": saved(MiniFusionNet(), folder / "mini.safetensors"),
             "lut": saved(MMLUT(bins=4, context_channels=4, context_blocks=1),
                          folder / "lut.safetensors")}
    return Files({name: (path.read_bytes(), load_artifact(path)) for name, path in files.items()})


def header_length(data: bytes) -> int:
    """Bytes of the safetensors length prefix plus its JSON header (manifest included)."""
    return 8 + int.from_bytes(data[:8], "little")


def same_content(loaded: Artifact, original: Artifact) -> bool:
    return (loaded.manifest == original.manifest
            and loaded.state_dict.keys() == original.state_dict.keys()
            and all(torch.equal(loaded.state_dict[k], v) for k, v in original.state_dict.items()))


def load_or_refuse(path: Path) -> Artifact | None:
    """Load ``path``; None when it is refused with an ArtifactError that names the file."""
    try:
        return load_artifact(path)
    except ArtifactError as error:
        assert path.name in str(error), f"error does not name the file: {error}"
        event("refused")
        return None


def fuse_tiny(artifact: Artifact | str | Path) -> np.ndarray:
    pipeline = FusionPipeline.from_artifact(artifact, backend="torch")
    rng = np.random.default_rng(0)
    fused = pipeline.fuse(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
                          rng.integers(0, 256, (6, 8), dtype=np.uint8))
    assert fused.shape == (6, 8, 3) and fused.dtype == np.uint8
    return fused


@FAST
@given(name=st.sampled_from(("mini", "lut")), fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_at_any_offset_is_refused(originals, tmp_path, name, fraction):
    data, _ = originals[name]
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ArtifactError, match="truncated.safetensors"):
        load_artifact(path)
    with pytest.raises(ArtifactError, match="truncated.safetensors"):
        FusionPipeline.from_artifact(path)


@pytest.mark.parametrize("region", ["header", "body"])
@settings(max_examples=80, deadline=timedelta(seconds=3),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(("mini", "lut")), fraction=st.floats(0.0, 1.0, exclude_max=True),
       bit=st.integers(0, 7))
def test_a_flipped_bit_is_refused_never_loaded_silently(originals, tmp_path, region, name,
                                                        fraction, bit):
    """One bit flipped in the safetensors header (manifest included) or in the tensor bytes."""
    raw, original = originals[name]
    start, stop = (0, header_length(raw)) if region == "header" else (header_length(raw), len(raw))
    position = start + int((stop - start) * fraction)
    flipped = bytearray(raw)
    flipped[position] ^= 1 << bit
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(flipped))
    loaded = load_or_refuse(path)
    if loaded is not None:
        # Only a flip that changes no content (an equivalent JSON escape) may load.
        event("loaded unchanged")
        assert same_content(loaded, original), f"bit {bit} of byte {position} changed the model"
        fuse_tiny(path)


def rewrite(path: Path, tensors: dict[str, torch.Tensor], manifest: dict | None) -> Path:
    metadata = None if manifest is None else {MANIFEST_KEY: json.dumps(manifest)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


@FAST
@given(name=st.sampled_from(("mini", "lut")), data=st.data())
def test_wrong_tensor_shapes_are_named(originals, tmp_path, name, data):
    _, original = originals[name]
    key = data.draw(st.sampled_from(sorted(original.state_dict)), label="tensor")
    shape = tuple(data.draw(st.lists(st.integers(0, 5), min_size=0, max_size=5), label="shape"))
    assume(shape != tuple(original.state_dict[key].shape))
    tensors = dict(original.state_dict, **{key: torch.zeros(shape)})
    path = rewrite(tmp_path / "shape.safetensors", tensors, original.manifest)
    with pytest.raises(ArtifactError, match=rf"shape.safetensors: tensor '{key}' has shape"):
        load_artifact(path)


@FAST
@given(name=st.sampled_from(("mini", "lut")), data=st.data(),
       value=st.sampled_from((math.nan, math.inf, -math.inf)))
def test_nan_and_inf_weights_are_named(originals, tmp_path, name, data, value):
    _, original = originals[name]
    key = data.draw(st.sampled_from(sorted(original.state_dict)), label="tensor")
    tensor = original.state_dict[key].clone()
    assume(tensor.numel() > 0)
    index = data.draw(st.integers(0, tensor.numel() - 1), label="index")
    tensor.view(-1)[index] = value
    path = rewrite(tmp_path / "nan.safetensors", dict(original.state_dict, **{key: tensor}),
                   original.manifest)
    with pytest.raises(ArtifactError, match=rf"tensor '{key}' holds 1 NaN/inf values"):
        load_artifact(path)


MANIFEST_FIELDS = ("format", "format_version", "family", "architecture", "output", "name",
                   "tensors", "parameters", INTEGRITY_KEY)


@FAST
@given(name=st.sampled_from(("mini", "lut")), field=st.sampled_from(MANIFEST_FIELDS),
       nested=st.booleans(), value=JSON_VALUES, legacy=st.booleans())
def test_mutated_manifests_are_refused_or_fully_usable(originals, tmp_path, name, field, nested,
                                                       value, legacy):
    """Any JSON value in any manifest field is refused by the integrity check.

    A version 1 manifest (no integrity entry) relies on the structural checks: refused, or
    the model loads and fuses.
    """
    _, original = originals[name]
    manifest = json.loads(json.dumps(original.manifest))
    if legacy:
        manifest.pop(INTEGRITY_KEY)
        manifest["format_version"] = 1
    target = manifest.get(field)
    if nested and isinstance(target, dict) and target:
        target[sorted(target)[0]] = value
    else:
        manifest[field] = value
    assume(manifest != original.manifest)
    path = rewrite(tmp_path / "manifest.safetensors", dict(original.state_dict), manifest)
    loaded = load_or_refuse(path)
    if loaded is not None:
        event("loaded")
        assert legacy, f"integrity missed an edit of {field!r}"
        assert all(torch.equal(loaded.state_dict[k], v) for k, v in original.state_dict.items())
        fuse_tiny(loaded)


def test_integrity_names_the_damage_and_version_1_files_still_load(originals, tmp_path):
    raw, original = originals["mini"]
    manifest = dict(original.manifest, description="edited by hand")
    path = rewrite(tmp_path / "edited.safetensors", dict(original.state_dict), manifest)
    with pytest.raises(ArtifactError, match="edited.safetensors: content does not match its "
                                            "integrity sha256"):
        load_artifact(path)
    del manifest[INTEGRITY_KEY]
    rewrite(path, dict(original.state_dict), manifest)
    with pytest.raises(ArtifactError, match="has no 'integrity' entry"):
        load_artifact(path)
    rewrite(path, dict(original.state_dict), dict(manifest, format_version=1))
    assert load_artifact(path).manifest["description"] == "edited by hand"
    resaved = save_artifact(load_artifact(path).build_model(), tmp_path / "resaved.safetensors",
                            load_artifact(path).manifest)
    assert load_artifact(resaved).manifest["format_version"] == 2


def test_hostile_architecture_is_refused_before_anything_is_allocated(originals, tmp_path):
    """A manifest asking for a 10^4-bin LUT (40 TB) or negative widths is refused at once."""
    _, original = originals["lut"]
    for architecture, message in (({"bins": 10_000}, "bins=10000 is outside"),
                                  ({"context_channels": -1}, "context_channels=-1 is outside"),
                                  ({"context_blocks": 2 ** 40}, "outside 0..1024"),
                                  ([1, 2], "architecture must be a JSON object")):
        manifest = dict(original.manifest, format_version=1)
        manifest.pop(INTEGRITY_KEY)
        manifest["architecture"] = (dict(original.manifest["architecture"], **architecture)
                                    if isinstance(architecture, dict) else architecture)
        path = rewrite(tmp_path / "hostile.safetensors", dict(original.state_dict), manifest)
        with pytest.raises(ArtifactError, match=message):
            load_artifact(path)


@FAST
@given(tensors=st.dictionaries(st.text(min_size=1, max_size=12),
                               st.lists(st.integers(0, 4), max_size=3), max_size=4),
       metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.text(max_size=8),
                                                     max_size=3),
                          st.builds(lambda v: {MANIFEST_KEY: v},
                                    st.text(max_size=20) | JSON_VALUES.map(json.dumps))))
def test_foreign_safetensors_files_are_refused(tmp_path, tensors, metadata):
    """Weights saved with safetensors by someone else: no manifest, a foreign one, or junk."""
    assume(tensors)
    path = tmp_path / "foreign.safetensors"
    save_file({k: torch.ones(shape) for k, shape in tensors.items()}, str(path), metadata=metadata)
    with pytest.raises(ArtifactError, match="foreign.safetensors"):
        load_artifact(path)


@FAST
@given(data=st.binary(max_size=600), prefix=st.sampled_from((b"", b"\x10\x00\x00\x00\x00\x00\x00"
                                                                  b"\x00{", b"\x08\x00")))
def test_random_bytes_are_refused(tmp_path, data, prefix):
    path = tmp_path / "random.safetensors"
    path.write_bytes(prefix + data)
    with pytest.raises(ArtifactError, match="random.safetensors"):
        load_artifact(path)
    with pytest.raises(ArtifactError, match="random.safetensors"):
        FusionPipeline.from_artifact(path)


@pytest.fixture(scope="module")
def onnx_files(originals, tmp_path_factory) -> dict[str, Path]:
    """A lutfuse ONNX export of the fuzzed mini-model, and a foreign (plain) ONNX model."""
    import onnx
    from onnx import TensorProto, helper

    from lutfuse_ros.export.onnx_export import export_onnx, write_onnx

    folder = tmp_path_factory.mktemp("onnx")
    lutfuse = write_onnx(export_onnx(originals["mini"][1]), folder / "mini.onnx")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["visible"], ["fused_luma"])], "foreign",
        [helper.make_tensor_value_info("visible", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("fused_luma", TensorProto.FLOAT, [1, 3, None, None])])
    foreign = folder / "foreign.onnx"
    onnx.save(helper.make_model(graph), foreign)
    return {"lutfuse": lutfuse, "foreign": foreign}


@pytest.mark.parametrize("kind", ["lutfuse", "foreign"])
def test_onnx_files_given_as_artifacts_are_refused(onnx_files, tmp_path, kind):
    for suffix in (".onnx", ".safetensors"):
        path = tmp_path / f"model{suffix}"
        path.write_bytes(onnx_files[kind].read_bytes())
        with pytest.raises(ArtifactError, match=rf"model\{suffix}: not a readable safetensors"):
            load_artifact(path)


def test_onnx_of_other_weights_or_foreign_onnx_is_refused_by_the_backend(originals, onnx_files):
    artifact = originals["mini"][1]
    with pytest.raises(BackendError, match="not exported by 'lutfuse export onnx'"):
        FusionPipeline.from_artifact(artifact, backend="onnxruntime",
                                     onnx_path=str(onnx_files["foreign"]))
    other = originals["lut"][1]
    with pytest.raises(BackendError, match="does not belong to artifact 'lut'"):
        FusionPipeline.from_artifact(other, backend="onnxruntime",
                                     onnx_path=str(onnx_files["lutfuse"]))


@settings(max_examples=25, deadline=timedelta(seconds=5),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), truncate=st.booleans(),
       bit=st.integers(0, 7))
def test_damaged_onnx_files_never_crash_the_onnxruntime_backend(originals, onnx_files, tmp_path,
                                                                fraction, truncate, bit):
    """A truncated or bit-flipped ``.onnx`` beside a good artifact is refused or harmless.

    BackendError (the export's integrity hash covers graph, weights and metadata), or -- for
    a flip in a field outside the hash, such as the producer name -- exactly the undamaged
    model's output.
    """
    raw = onnx_files["lutfuse"].read_bytes()
    position = int(len(raw) * fraction)
    if truncate:
        damaged = raw[:position]
    else:
        damaged = bytearray(raw)
        damaged[position] ^= 1 << bit
    path = tmp_path / "damaged.onnx"
    path.write_bytes(bytes(damaged))
    try:
        fused = fuse_onnx(originals["mini"][1], path)
    except BackendError as error:
        event("refused")
        assert "damaged.onnx" in str(error) or "onnxruntime" in str(error), str(error)
    except LutfuseError:
        event("refused at inference")
    else:
        event("loaded: flip outside the model")
        assert np.array_equal(fused, fuse_onnx(originals["mini"][1], onnx_files["lutfuse"]))


def fuse_onnx(artifact: Artifact, path: Path) -> np.ndarray:
    pipeline = FusionPipeline.from_artifact(artifact, backend="onnxruntime", onnx_path=str(path))
    rng = np.random.default_rng(0)
    return pipeline.fuse(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
                         rng.integers(0, 256, (6, 8), dtype=np.uint8))

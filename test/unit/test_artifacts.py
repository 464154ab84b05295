"""Artifacts: round trip, validation, refusal of broken or foreign files."""

import json

import pytest
import torch
from safetensors.torch import save_file

from lutfuse_ros.artifacts import (MANIFEST_KEY, load_artifact, make_manifest, save_artifact,
                                   shipped_models)
from lutfuse_ros.errors import ArtifactError
from lutfuse_ros.families.mini.model import MiniFusionNet
from lutfuse_ros.families.mmlut.model import MMLUT


@pytest.fixture
def mini_file(tmp_path):
    model = MiniFusionNet()
    manifest = make_manifest(model, name="t", description="test", provenance={"source": "test"})
    return save_artifact(model, tmp_path / "mini.safetensors", manifest), model


def test_round_trip(mini_file):
    path, model = mini_file
    artifact = load_artifact(path)
    assert artifact.family == "mini" and artifact.manifest["parameters"] == 113
    rebuilt = artifact.build_model()
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value)


def test_save_refuses_to_overwrite(mini_file):
    path, model = mini_file
    manifest = load_artifact(path).manifest
    with pytest.raises(FileExistsError, match="--force"):
        save_artifact(model, path, manifest)
    save_artifact(model, path, manifest, overwrite=True)
    assert not list(path.parent.glob("*.part"))


def test_shipped_models_load():
    names = shipped_models()
    assert {"lutfuse-mmlut", "lutfuse-mini"} <= set(names)
    for name in names:
        assert load_artifact(name).manifest["provenance"]["source"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ArtifactError, match="nope.safetensors.*not found"):
        load_artifact(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 8, 100, 300])
def test_truncated_file_is_refused(mini_file, tmp_path, keep):
    path, _ = mini_file
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ArtifactError, match="broken.safetensors"):
        load_artifact(broken)


def test_garbage_file_is_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64 + b"not a model" * 20)
    with pytest.raises(ArtifactError, match="junk.safetensors"):
        load_artifact(junk)


def test_foreign_safetensors_without_manifest(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(ArtifactError, match="no 'lutfuse_manifest'"):
        load_artifact(foreign)


def _rewrite(path, tensors, manifest):
    save_file(tensors, str(path), metadata={MANIFEST_KEY: json.dumps(manifest)})


def test_nan_weights_are_refused(mini_file):
    path, model = mini_file
    artifact = load_artifact(path)
    tensors = dict(artifact.state_dict)
    tensors["conv1.1.weight"] = tensors["conv1.1.weight"].clone()
    tensors["conv1.1.weight"][0, 0, 0, 0] = float("nan")
    _rewrite(path, tensors, artifact.manifest)
    with pytest.raises(ArtifactError, match="conv1.1.weight.*NaN"):
        load_artifact(path)


def test_wrong_shape_and_family_are_refused(mini_file, tmp_path):
    path, model = mini_file
    artifact = load_artifact(path)
    tensors = dict(artifact.state_dict)
    tensors["conv2.1.weight"] = torch.zeros(1, 4, 5, 5)
    _rewrite(path, tensors, artifact.manifest)
    with pytest.raises(ArtifactError, match="conv2.1.weight.*shape"):
        load_artifact(path)
    lut_manifest = make_manifest(MMLUT(bins=4), name="x", description="x", provenance={})
    _rewrite(path, dict(artifact.state_dict), lut_manifest)
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path)
    bad = dict(artifact.manifest, family="resnet")
    _rewrite(path, dict(artifact.state_dict), bad)
    with pytest.raises(ArtifactError, match="unknown model family 'resnet'"):
        load_artifact(path)

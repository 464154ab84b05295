"""TensorRT: engine cache keys, sidecars, stale detection, profiles, errors; GPU runs if present.

Everything up to deserialising an engine is plain Python and runs here; the tests that build
and run an engine need TensorRT and a CUDA GPU and skip with the reason otherwise.
"""

import hashlib
import importlib.util
import json
import shlex

import numpy as np
import pytest

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.backends import available_backends, backend_class, create_backend
from lutfuse_ros.cli.main import main
from lutfuse_ros.errors import BackendError, ConfigError
from lutfuse_ros.export import engine_cache
from lutfuse_ros.export.engine_cache import (EngineKey, EngineRecord, ProfileShapes,
                                             check_input_shape, engine_paths, locate_engine,
                                             parse_resolution, rebuild_command, save_engine,
                                             verify_engine)

KEY = EngineKey(tensorrt_version="10.3.0", gpu_name="Orin", compute_capability="8.7",
                onnx_sha256="ab" * 32, precision="fp16")
PROFILE = ProfileShapes.covering([(640, 480), (1280, 720)])


def _tensorrt_gpu_reason():
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (not installable from PyPI here)"
    import torch
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


needs_tensorrt_gpu = pytest.mark.skipif(_tensorrt_gpu_reason() is not None,
                                        reason=str(_tensorrt_gpu_reason()))


def _record(key=KEY, engine=b"engine-bytes", profile=PROFILE, command="lutfuse export ..."):
    return EngineRecord(key=key, profile=profile, workspace_mb=1024,
                        engine_sha256=hashlib.sha256(engine).hexdigest(), model_name="lutfuse-mini",
                        weights_sha256="cd" * 32, lut_op="", build_command=command)


def test_resolutions_and_profile_bounds():
    assert parse_resolution("1280x720") == (1280, 720) and parse_resolution(" 64X48 ") == (64, 48)
    for bad in ("1280", "0x10", "axb", "640x480x3"):
        with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
            parse_resolution(bad)
    profile = ProfileShapes.covering([(1280, 720), (640, 480), (720, 1280)])
    assert profile.min_hw == (480, 640) and profile.max_hw == (1280, 1280)
    assert profile.opt_hw == (720, 1280)
    assert profile.input_shapes(3) == ((1, 3, 480, 640), (1, 3, 720, 1280), (1, 3, 1280, 1280))
    assert profile.contains(600, 800) and not profile.contains(479, 800)
    assert not profile.contains(720, 1281)
    assert ProfileShapes.covering([(640, 480)], opt=(320, 240)).min_hw == (240, 320)
    assert ProfileShapes.from_dict(profile.to_dict()) == profile


def test_key_digest_is_stable_and_every_field_matters():
    assert KEY.digest() == EngineKey(**vars(KEY)).digest()
    variants = {"tensorrt_version": "10.4.0", "gpu_name": "RTX 4060 Ti",
                "compute_capability": "8.9", "onnx_sha256": "ef" * 32, "precision": "fp32"}
    digests = {KEY.digest()}
    for field, value in variants.items():
        other = EngineKey(**{**vars(KEY), field: value})
        digests.add(other.digest())
        (difference,) = KEY.differences(other)
        assert repr(value) in difference
    assert len(digests) == 6


def test_engine_file_names_carry_model_precision_and_key(tmp_path):
    engine, sidecar = engine_paths(tmp_path, "my model/v2", KEY)
    assert engine.parent == tmp_path and engine.suffix == ".engine"
    assert engine.name == f"my_model_v2-fp16-{KEY.digest()}.engine"
    assert sidecar == engine.with_suffix(".json")


def test_rebuild_command_names_everything_needed_to_rebuild(tmp_path):
    command = rebuild_command("lutfuse-mmlut", "fp32", PROFILE)
    assert command == ("lutfuse export tensorrt lutfuse-mmlut --precision fp32 "
                       "--resolutions 640x480 1280x720")
    custom = rebuild_command(tmp_path / "my model.onnx", "fp16",
                             ProfileShapes.covering([(640, 480)], opt=(320, 240)),
                             cache_dir=tmp_path / "c", lut_op="gridsample", workspace_mb=256,
                             device="cuda:1")
    words = shlex.split(custom)
    assert words[3] == str(tmp_path / "my model.onnx")
    for flag, value in (("--opt", "320x240"), ("--lut-op", "gridsample"),
                        ("--workspace-mb", "256"), ("--cache-dir", str(tmp_path / "c")),
                        ("--device", "cuda:1")):
        assert words[words.index(flag) + 1] == value


def test_save_then_verify_and_locate(tmp_path):
    engine_path, _ = engine_paths(tmp_path, "lutfuse-mini", KEY)
    save_engine(engine_path, _record(), b"engine-bytes")
    record, data = verify_engine(engine_path, KEY, "CMD")
    assert data == b"engine-bytes" and record.profile == PROFILE
    assert json.loads(engine_path.with_suffix(".json").read_text())["key"]["gpu_name"] == "Orin"
    path, record, data = locate_engine(tmp_path, "lutfuse-mini", KEY, "CMD")
    assert path == engine_path and data == b"engine-bytes"
    with pytest.raises(FileExistsError, match="--force"):
        save_engine(engine_path, _record(), b"engine-bytes")
    save_engine(engine_path, _record(engine=b"new"), b"new", force=True)
    assert verify_engine(engine_path, KEY, "CMD")[1] == b"new"
    with pytest.raises(ValueError, match="engine_sha256"):
        save_engine(engine_path, _record(), b"other bytes", force=True)


@pytest.mark.parametrize("field,value,label", [
    ("tensorrt_version", "10.5.0", "TensorRT version"),
    ("gpu_name", "NVIDIA GeForce RTX 4060 Ti", "GPU"),
    ("compute_capability", "8.9", "compute capability"),
    ("onnx_sha256", "00" * 32, "ONNX sha256"),
])
def test_stale_engine_names_the_difference_and_the_rebuild_command(tmp_path, field, value, label):
    engine_path, _ = engine_paths(tmp_path, "lutfuse-mini", KEY)
    save_engine(engine_path, _record(), b"engine-bytes")
    here = EngineKey(**{**vars(KEY), field: value})
    command = "lutfuse export tensorrt lutfuse-mini --precision fp16 --resolutions 640x480"
    with pytest.raises(BackendError) as error:
        verify_engine(engine_path, here, command)
    assert "stale" in str(error.value) and label in str(error.value)
    assert str(error.value).endswith(command)
    with pytest.raises(BackendError) as error:
        locate_engine(tmp_path, "lutfuse-mini", here, command)
    message = str(error.value)
    assert "no TensorRT engine" in message and engine_path.name in message and label in message
    assert message.endswith(command)


def test_missing_tampered_or_unreadable_engines(tmp_path):
    with pytest.raises(BackendError, match="not found; build it with: CMD"):
        verify_engine(tmp_path / "none.engine", KEY, "CMD")
    with pytest.raises(BackendError, match=r"no TensorRT engine .* in .*; build it with: CMD$"):
        locate_engine(tmp_path, "lutfuse-mini", KEY, "CMD")
    engine_path, sidecar = engine_paths(tmp_path, "lutfuse-mini", KEY)
    save_engine(engine_path, _record(), b"engine-bytes")
    engine_path.write_bytes(b"engine-bytes, truncated?")
    with pytest.raises(BackendError, match="does not match the sha256 in its sidecar"):
        verify_engine(engine_path, KEY, "CMD")
    sidecar.write_text("{not json")
    with pytest.raises(BackendError, match="sidecar .* is unreadable .* CMD"):
        verify_engine(engine_path, KEY, "CMD")
    sidecar.unlink()
    with pytest.raises(BackendError, match="sidecar .* is missing"):
        verify_engine(engine_path, KEY, "CMD")


def test_input_outside_the_profile_is_refused_with_a_covering_command():
    record = _record()
    check_input_shape(record, 480, 640, "CMD")
    check_input_shape(record, 600, 1000, "CMD")
    with pytest.raises(BackendError, match=r"input 1920x1080 is outside .*max 1280x720.*: CMD2"):
        check_input_shape(record, 1080, 1920, "CMD2")
    with pytest.raises(BackendError, match="input 320x240 is outside"):
        check_input_shape(record, 240, 320, "CMD")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LUTFUSE_ENGINE_CACHE", str(tmp_path / "engines"))
    assert engine_cache.default_cache_dir() == tmp_path / "engines"
    monkeypatch.delenv("LUTFUSE_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine_cache.default_cache_dir() == tmp_path / "xdg" / "lutfuse" / "engines"


@pytest.mark.skipif(_tensorrt_gpu_reason() is None, reason="TensorRT and a GPU are present")
def test_without_tensorrt_the_backend_is_unavailable_and_says_why():
    artifact = load_artifact("lutfuse-mini")
    assert "tensorrt" not in available_backends("cuda")
    assert not backend_class("tensorrt").is_available("cuda")
    with pytest.raises(BackendError, match="not available"):
        create_backend("tensorrt", artifact, device="cuda")
    with pytest.raises(BackendError, match="TensorRT is not installed|CUDA is not available"):
        backend_class("tensorrt")(artifact, device="cuda")
    with pytest.raises(ConfigError, match="cuda"):
        backend_class("tensorrt")(artifact, device="cpu")


@pytest.mark.skipif(_tensorrt_gpu_reason() is None, reason="TensorRT and a GPU are present")
def test_cli_export_tensorrt_checks_ops_before_needing_tensorrt(tmp_path, capsys):
    assert main(["export", "tensorrt", "lutfuse-mini", "--cache-dir", str(tmp_path)]) == 1
    assert "TensorRT is not installed" in capsys.readouterr().err
    assert main(["export", "tensorrt", "lutfuse-mini", "--resolutions", "640"]) == 1
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@needs_tensorrt_gpu
def test_gpu_engine_build_cache_and_parity(tmp_path):
    from lutfuse_ros.backends.onnx_backend import OnnxRuntimeBackend

    cache = tmp_path / "engines"
    rng = np.random.default_rng(0)
    visible = rng.random((1, 3, 240, 320), dtype=np.float32)
    infrared = rng.random((1, 1, 240, 320), dtype=np.float32)
    for name, precision, tolerance in (("lutfuse-mini", "fp32", 1e-4),
                                       ("lutfuse-mmlut", "fp32", 1e-4),
                                       ("lutfuse-mmlut", "fp16", 1 / 255)):
        args = ["export", "tensorrt", name, "--precision", precision, "--resolutions",
                "320x240", "640x480", "--cache-dir", str(cache)]
        assert main(args) == 0
        assert main(args) == 0  # up to date: not rebuilt, not an error
        artifact = load_artifact(name)
        backend = create_backend("tensorrt", artifact, device="cuda", precision=precision,
                                 cache_dir=str(cache))
        expected = OnnxRuntimeBackend(artifact).infer(visible, infrared)
        assert np.abs(backend.infer(visible, infrared) - expected).max() <= tolerance
        with pytest.raises(BackendError, match="--resolutions 320x240 640x480 1280x720"):
            backend.infer(np.zeros((1, 3, 720, 1280), np.float32),
                          np.zeros((1, 1, 720, 1280), np.float32))
        backend.close()


@needs_tensorrt_gpu
def test_gpu_engine_of_other_weights_is_stale(tmp_path):
    cache = tmp_path / "engines"
    assert main(["export", "tensorrt", "lutfuse-mini", "--precision", "fp32",
                 "--resolutions", "320x240", "--cache-dir", str(cache)]) == 0
    artifact = load_artifact("lutfuse-mini")
    artifact.state_dict["conv2.1.bias"] = artifact.state_dict["conv2.1.bias"] + 0.5
    with pytest.raises(BackendError, match="lutfuse export tensorrt lutfuse-mini"):
        create_backend("tensorrt", artifact, device="cuda", precision="fp32",
                       cache_dir=str(cache))

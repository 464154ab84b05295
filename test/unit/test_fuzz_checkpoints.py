"""Property-based tests: damaged official checkpoints and training checkpoints are refused.

``lutfuse import-checkpoint`` reads the official LUT-Fuse ``.npy``/``.pth`` and MMDRFuse
``.model`` files (the families' importers, ``lutfuse_ros/families/*/importer.py``), and
``lutfuse train --resume`` reads
``checkpoint.pt`` (:mod:`lutfuse_ros.training.checkpoint`). Hypothesis gives them tables of any
shape and dtype, truncated and bit-flipped files and files that ask for gigantic networks: the
answer is :class:`~lutfuse_ros.errors.ArtifactError` (imports) or
:class:`~lutfuse_ros.errors.ConfigError` (checkpoints) naming the file, or a complete, finite
model; never another exception, never an attempt to allocate what the file does not hold.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lutfuse_ros.errors import ArtifactError, ConfigError
from lutfuse_ros.families.mini.model import MiniFusionNet

FAST = settings(max_examples=60, deadline=timedelta(seconds=3),
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


class Files(dict):
    """A fixture's dict of file contents, printed briefly in hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<{', '.join(self)}>"


@pytest.fixture(scope="module")
def official_like(tmp_path_factory) -> dict[str, bytes]:
    """Files in the official formats: a LUT ``.npy``, a context ``.pth``, a student ``.model``."""
    from lutfuse_ros.families.mmlut.context_net import ContextNet

    folder = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    np.save(folder / "lut.npy", np.random.default_rng(0).random((3, 3, 3, 3, 1), np.float32))
    torch.save(ContextNet(channels=4, num_mid=1).state_dict(), folder / "context.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in MiniFusionNet().state_dict().items()}},
               folder / "student.model")
    return Files({name: (folder / name).read_bytes() for name in ("lut.npy", "context.pth",
                                                                  "student.model")})


def run_import(folder: Path, files: dict[str, bytes], which: str):
    from lutfuse_ros.families.mini.importer import import_mmdrfuse
    from lutfuse_ros.families.mmlut.importer import import_lutfuse

    for name, data in files.items():
        (folder / name).write_bytes(data)
    if which == "mmdrfuse":
        return import_mmdrfuse(folder / "student.model")
    return import_lutfuse(folder / "lut.npy", folder / "context.pth")


@FAST
@given(shape=st.lists(st.integers(0, 4), max_size=6),
       dtype=st.sampled_from(("float32", "float64", "float16", "int32", "bool", "complex64")),
       nan=st.booleans())
def test_official_lut_tables_of_any_shape_and_dtype(official_like, tmp_path, shape, dtype, nan):
    table = np.random.default_rng(len(shape)).random(shape).astype(dtype)
    if nan and table.size and np.issubdtype(table.dtype, np.floating):
        table.reshape(-1)[0] = np.nan
    path = tmp_path / "lut.npy"
    np.save(path, table)
    files = dict(official_like, **{"lut.npy": path.read_bytes()})
    try:
        model, manifest = run_import(tmp_path, files, "lutfuse")
    except ArtifactError as error:
        event("refused")
        assert "lut.npy" in str(error) or "context.pth" in str(error), str(error)
        return
    cube = table[..., 0] if table.ndim == 5 else table
    assert np.issubdtype(table.dtype, np.floating) and np.isfinite(table).all()
    assert cube.ndim == 4 and len(set(cube.shape)) == 1 and cube.shape[0] >= 2
    np.testing.assert_array_equal(model.lut.detach().numpy(), cube.astype(np.float32))
    assert manifest["architecture"]["bins"] == cube.shape[0]


@FAST
@given(name=st.sampled_from(("lut.npy", "context.pth", "student.model")),
       fraction=st.floats(0.0, 1.0, exclude_max=True), truncate=st.booleans(),
       bit=st.integers(0, 7))
def test_damaged_official_checkpoints_are_refused_or_import_whole(official_like, tmp_path, name,
                                                                  fraction, truncate, bit):
    """Official files carry no checksum, so a flipped weight bit may import.

    Anything that does import must be a complete, finite model.
    """
    raw = official_like[name]
    position = int(len(raw) * fraction)
    damaged = bytearray(raw[:position] if truncate else raw)
    if not truncate:
        damaged[position] ^= 1 << bit
    which = "mmdrfuse" if name == "student.model" else "lutfuse"
    try:
        model, _ = run_import(tmp_path, dict(official_like, **{name: bytes(damaged)}), which)
    except ArtifactError as error:
        event("refused")
        assert name in str(error), str(error)
        return
    event("imported")
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_a_damaged_npy_header_text_is_refused_naming_the_file(official_like, tmp_path):
    """A flipped bit in the header's padding (found by the test above): "(" never closed."""
    raw = bytearray(official_like["lut.npy"])
    padding = raw.index(b"}") + 20   # a space of the header's padding
    assert raw[padding:padding + 1] == b" "
    raw[padding] = ord("(")
    with pytest.raises(ArtifactError, match=r"lut.npy: not a readable .npy array \((Syntax|Token)"):
        run_import(tmp_path, dict(official_like, **{"lut.npy": bytes(raw)}), "lutfuse")


def test_official_files_asking_for_huge_networks_are_refused_at_once(official_like, tmp_path):
    from lutfuse_ros.families.mmlut.context_net import ContextNet

    header_end = official_like["lut.npy"].index(b"\n") + 1
    huge = official_like["lut.npy"][:header_end].replace(b"(3, 3, 3, 3, 1)",
                                                         b"(9999, 9999, 9999, 9999, 1)")
    with pytest.raises(ArtifactError, match="lut.npy: not a readable .npy array"):
        run_import(tmp_path, dict(official_like, **{"lut.npy": huge}), "lutfuse")
    state = ContextNet(channels=4, num_mid=1).state_dict()
    state["input_layer.0.weight"] = torch.zeros(1000, 0, 3, 3)  # 1000 channels, no weights
    path = tmp_path / "hostile.pth"
    torch.save(state, path)
    with pytest.raises(ArtifactError, match="context.pth: weights do not fit"):
        run_import(tmp_path, dict(official_like, **{"context.pth": path.read_bytes()}),
                   "lutfuse")
    state["input_layer.0.weight"] = torch.zeros(10 ** 6, 0, 3, 3)
    torch.save(state, path)
    with pytest.raises(ArtifactError, match="first axis .* must be 1..1024"):
        run_import(tmp_path, dict(official_like, **{"context.pth": path.read_bytes()}),
                   "lutfuse")


@FAST
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), truncate=st.booleans(),
       bit=st.integers(0, 7))
def test_damaged_training_checkpoints_are_refused_with_config_error(tmp_path, fraction, truncate,
                                                                    bit):
    """``lutfuse train --resume`` reads ``checkpoint.pt``; a damaged one is named, not a crash."""
    from lutfuse_ros.training.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"stage": "mini", "model": MiniFusionNet().state_dict(),
                           "progress": {"global_step": 3}})
    raw = path.read_bytes()
    position = int(len(raw) * fraction)
    damaged = bytearray(raw[:position] if truncate else raw)
    if not truncate:
        damaged[position] ^= 1 << bit
    path.write_bytes(bytes(damaged))
    try:
        state = load_checkpoint(path)
    except ConfigError as error:
        event("refused")
        assert "checkpoint.pt" in str(error)
        return
    event("loaded")  # no checksum: a flipped value may load; the structure is still a dict
    assert isinstance(state, dict) and state["version"] == 1


def test_resuming_from_a_damaged_checkpoint_names_it(tmp_path):
    from lutfuse_ros.training.checkpoint import save_checkpoint
    from lutfuse_ros.training.config import parse_config
    from lutfuse_ros.training.engine import train

    for sub in ("vi", "ir"):
        (tmp_path / "scenes" / sub).mkdir(parents=True)
        for index in range(2):
            cv2.imwrite(str(tmp_path / "scenes" / sub / f"{index}.png"),
                        np.full((24, 24, 3) if sub == "vi" else (24, 24), 60 * index, np.uint8))
    config = parse_config(f"""
stage: teacher
name: resumed
output: {tmp_path}/teacher.safetensors
run_dir: {tmp_path}/run
data: {{sources: [{{kind: folder, path: {tmp_path}/scenes}}], crop_size: 16,
       crops_per_epoch: 2, fixed_crops: true}}
train: {{epochs: 1, batch_size: 2}}
teacher_model: {{width: 2}}
""")
    save_checkpoint(tmp_path / "run" / "checkpoint.pt",
                    {"stage": "teacher", "model": {}, "progress": {"epoch": "x"}})
    with pytest.raises(ConfigError, match="cannot resume from .*checkpoint.pt.*--force"):
        train(config, resume=True, progress=False)

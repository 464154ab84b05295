"""The lutfuse CLI: demo, fuse (files and folders), info, import-checkpoint, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lutfuse_ros.cli.main import main
from lutfuse_ros.demo_scene import make_demo_pair


@pytest.fixture
def pair_folders(tmp_path):
    vis_dir, ir_dir = tmp_path / "vi", tmp_path / "ir"
    vis_dir.mkdir()
    ir_dir.mkdir()
    for seed in range(3):
        visible, thermal = make_demo_pair(48, 64, seed=seed)
        cv2.imwrite(str(vis_dir / f"s{seed}.png"), visible)
        cv2.imwrite(str(ir_dir / f"s{seed}.png"), thermal)
    (vis_dir / "s3.png").write_bytes(b"not a png")  # unreadable: must be skipped and reported
    (ir_dir / "s3.png").write_bytes(b"nor this")
    return vis_dir, ir_dir


def test_demo_writes_images_and_grid(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "grid:" in out
    grid = cv2.imread(str(tmp_path / "demo" / "demo_grid.png"))
    assert grid is not None and grid.shape[1] > 3 * 240
    assert cv2.imread(str(tmp_path / "demo" / "fused_lutfuse-mmlut.png")).shape == (480, 640, 3)


def test_fuse_folder_skips_bad_pairs_and_resumes(pair_folders, tmp_path, capsys):
    vis_dir, ir_dir = pair_folders
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in list(vis_dir.iterdir()) + list(ir_dir.iterdir())}
    code = main(["fuse", "--visible", str(vis_dir), "--thermal", str(ir_dir), "-o", str(out),
                 "--grid", "--model", "lutfuse-mini"])
    assert code == 0
    text = capsys.readouterr().out
    assert "fused 3 pair(s)" in text and "s3" in text and "failed" in text
    assert sorted(p.name for p in out.glob("s?.png")) == ["s0.png", "s1.png", "s2.png"]
    assert cv2.imread(str(out / "s0_grid.png")).shape[1] > 3 * 64
    assert before == {p: p.read_bytes() for p in before}, "inputs must never change"
    stamp = (out / "s0.png").stat().st_mtime_ns
    assert main(["fuse", "--visible", str(vis_dir), "--thermal", str(ir_dir), "-o", str(out)]) == 0
    assert "3 already there" in capsys.readouterr().out
    assert (out / "s0.png").stat().st_mtime_ns == stamp


def test_fuse_refuses_output_equal_to_input(pair_folders, capsys):
    vis_dir, ir_dir = pair_folders
    assert main(["fuse", "--visible", str(vis_dir), "--thermal", str(ir_dir),
                 "-o", str(vis_dir)]) == 1
    assert "input folder" in capsys.readouterr().err


def test_fuse_single_pair_with_alignment(tmp_path):
    visible, thermal = make_demo_pair(60, 80)
    small = cv2.resize(thermal, (40, 30))
    cv2.imwrite(str(tmp_path / "v.png"), visible)
    cv2.imwrite(str(tmp_path / "t.png"), small)
    args = ["fuse", "--visible", str(tmp_path / "v.png"), "--thermal", str(tmp_path / "t.png"),
            "-o", str(tmp_path / "f.png")]
    assert main(args) == 1  # sizes differ and no alignment: reported, nothing written
    assert not (tmp_path / "f.png").exists()
    assert main(args + ["--align", "resize_thermal"]) == 0
    assert cv2.imread(str(tmp_path / "f.png")).shape == (60, 80, 3)


def test_info_lists_and_prints(capsys):
    assert main(["info"]) == 0
    assert "lutfuse-mmlut" in capsys.readouterr().out
    assert main(["info", "lutfuse-mini", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == 113 + 10 and info["architecture"]["frame_level"] is True
    assert main(["info", "no-such-model"]) == 1
    assert "not found" in capsys.readouterr().err


def test_import_checkpoint_commands(shared_dir, tmp_path, capsys):
    models = shared_dir / "reference_models"
    out = tmp_path / "lut.safetensors"
    assert main(["import-checkpoint", "lutfuse",
                 "--lut", str(models / "lutfuse" / "fine_tuned_lut.npy"),
                 "--context", str(models / "lutfuse" / "generator_context.pth"),
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["architecture"]["bins"] == 16
    assert main(["import-checkpoint", "mmdrfuse", "--student",
                 str(models / "mmdrfuse" / "student.model"), "-o", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["import-checkpoint", "mmdrfuse",
                 "--student", str(models / "mmdrfuse" / "student.model"),
                 "-o", str(out), "--force"]) == 0


def test_import_rejects_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "student.model"
    bad.write_bytes(b"\x80\x04garbage")
    assert main(["import-checkpoint", "mmdrfuse", "--student", str(bad),
                 "-o", str(tmp_path / "x.safetensors")]) == 1
    assert "student.model" in capsys.readouterr().err
    wrong = tmp_path / "lut.npy"
    np.save(wrong, np.zeros((3, 4), np.float32))
    assert main(["import-checkpoint", "lutfuse", "--lut", str(wrong), "--context", str(bad),
                 "-o", str(tmp_path / "y.safetensors")]) == 1
    assert "(B,B,B,B)" in capsys.readouterr().err

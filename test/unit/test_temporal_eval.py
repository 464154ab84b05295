"""``lutfuse eval --temporal``: frame folders and video files as sequences."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lutfuse_ros.cli.main import main
from lutfuse_ros.metrics import AVERAGE_LABEL, MAX_LABEL
from lutfuse_ros.metrics.sequences import evaluate_sequences, natural_key
from lutfuse_ros.metrics.temporal import SOURCE_LABELS

FRAMES, HEIGHT, WIDTH = 12, 72, 96


def _panning(seed: int) -> list[np.ndarray]:
    """uint8 frames of a smooth texture panning 1 px down and 2 px right per frame."""
    noise = np.random.default_rng(seed).random((HEIGHT + FRAMES, WIDTH + 2 * FRAMES))
    smooth = cv2.GaussianBlur(noise.astype(np.float32), (0, 0), 2.5)
    smooth = 20 + 215 * (smooth - smooth.min()) / (smooth.max() - smooth.min())
    canvas = np.round(smooth).astype(np.uint8)
    return [canvas[t:t + HEIGHT, 2 * t:2 * t + WIDTH].copy() for t in range(FRAMES)]


def _write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """Frames as ``f1.png .. f12.png`` (natural order differs from the lexical one)."""
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames, start=1):
        assert cv2.imwrite(str(folder / f"f{index}.png"), frame)
    return folder


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sequences")
    ir, vi = _panning(1), _panning(2)
    average = [((a.astype(np.uint16) + b) // 2).astype(np.uint8) for a, b in zip(ir, vi)]
    gains = 1.0 + 0.08 * np.random.default_rng(3).standard_normal(FRAMES)
    flicker = [np.clip(np.round(frame * gain), 0, 255).astype(np.uint8)
               for frame, gain in zip(average, gains)]
    return {"ir": _write_folder(root / "ir", ir), "vi": _write_folder(root / "vi", vi),
            "steady": _write_folder(root / "steady", average),
            "flicker": _write_folder(root / "flicker", flicker), "root": root}


def test_natural_order():
    assert sorted(["f10", "f9", "f1"], key=natural_key) == ["f1", "f9", "f10"]


def test_eval_temporal_on_frame_folders(sequences, tmp_path, capsys):
    prefix = tmp_path / "out" / "clip"
    command = ["eval", f"steady={sequences['steady']}", f"flicker={sequences['flicker']}",
               "--ir", str(sequences["ir"]), "--vi", str(sequences["vi"]), "--baselines",
               "--temporal", "--out", str(prefix), "--no-progress"]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "| method | EN |" in printed and "| method | tRWE | tWE | tFlicker |" in printed
    document = json.loads(prefix.with_suffix(".json").read_text())
    assert document["methods"]["steady"]["count"] == FRAMES  # per-image metrics kept
    temporal = document["temporal"]
    assert temporal["matching"] == "stem" and temporal["frames"] == FRAMES
    assert list(temporal["methods"]) == ["steady", "flicker", AVERAGE_LABEL, MAX_LABEL,
                                         *SOURCE_LABELS]
    scores = temporal["methods"]
    assert scores["steady"]["frame_pairs"] == FRAMES - 1
    # the stored average is the average baseline itself: same scores
    assert scores["steady"]["tRWE"] == pytest.approx(scores[AVERAGE_LABEL]["tRWE"])
    assert scores["flicker"]["tRWE"] > 2 * scores["steady"]["tRWE"]
    assert scores["flicker"]["tFlicker"] > 5 * scores["steady"]["tFlicker"]
    assert scores[SOURCE_LABELS[0]]["tFlicker"] is None  # NaN -> null in strict JSON
    assert prefix.with_suffix(".md").read_text() == printed


def test_eval_temporal_with_source_videos(sequences, tmp_path, capsys):
    videos = {}
    for kind in ("ir", "vi"):
        path = tmp_path / f"{kind}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                                 (WIDTH, HEIGHT))
        if not writer.isOpened():
            pytest.skip("this OpenCV build cannot write MJPG video")
        for index in range(1, FRAMES + 1):
            writer.write(cv2.imread(str(sequences[kind] / f"f{index}.png")))
        writer.release()
        videos[kind] = path
    report = evaluate_sequences({"steady": sequences["steady"]}, videos["ir"], videos["vi"],
                                max_frames=8, progress=False)
    assert report.matching == "index" and report.frames == 8
    assert report.scores["steady"].frame_pairs == 7

    prefix = tmp_path / "video"
    assert main(["eval", f"steady={sequences['steady']}", "--ir", str(videos["ir"]), "--vi",
                 str(videos["vi"]), "--out", str(prefix), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| method | EN |" not in printed  # video inputs: temporal metrics only
    document = json.loads(prefix.with_suffix(".json").read_text())
    assert set(document) == {"temporal"}

    assert main(["eval", str(sequences["steady"]), "--ir", str(videos["ir"]), "--vi",
                 str(videos["vi"]), "--grid", str(tmp_path / "grid"), "--no-progress"]) == 1
    assert "--grid needs image folders" in capsys.readouterr().err


def test_eval_temporal_errors_are_named(sequences, tmp_path, capsys):
    short = _write_folder(tmp_path / "short", [cv2.imread(str(sequences["steady"] / "f1.png"),
                                                          cv2.IMREAD_GRAYSCALE)])
    code = main(["eval", str(short), "--ir", str(sequences["ir"]), "--vi", str(sequences["vi"]),
                 "--temporal", "--no-progress"])
    assert code == 1
    assert "at least 2 matched frames" in capsys.readouterr().err
    code = main(["eval", str(sequences["steady"]), "--ir", str(tmp_path / "missing.mp4"),
                 "--vi", str(sequences["vi"]), "--temporal", "--no-progress"])
    assert code == 1
    assert "missing.mp4" in capsys.readouterr().err

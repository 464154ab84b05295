"""Nothing lost: ``make-bag``, ``fuse``, ``train`` and ``replay`` interrupted for real.

Each test has a previous result at the output name, runs the real command in a subprocess
with ``--force`` and, once the run is demonstrably under way, sends SIGINT (Ctrl-C) or SIGKILL
(power cut, OOM killer). The previous result must be intact, byte for byte, and no
half-written file may sit under a final name; a SIGKILL may leave only hidden staging files
(``.NAME.*``) beside it. Failures through a real bad input and the refusals without
``--force`` are checked on the same outputs. Inputs are tiny; the whole file runs in well
under two minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from lutfuse_ros.artifacts import load_artifact, make_manifest, save_artifact
from lutfuse_ros.bag.common import NS_PER_S
from lutfuse_ros.bag.writer import ImageBagWriter
from lutfuse_ros.families.mini.model import MiniFusionNet

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
START_NS = 1_700_000_000 * NS_PER_S
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGKILL, id="SIGKILL")]


def lutfuse(*args: str, stderr_to: Path | None = None) -> subprocess.Popen:
    """Start ``python -m lutfuse_ros.cli.main ARGS`` (stderr to a file to poll, if given)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    stderr = open(stderr_to, "wb") if stderr_to else subprocess.PIPE  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, "-m", "lutfuse_ros.cli.main", *args], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=stderr)
    finally:
        if stderr_to:
            stderr.close()


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    """Wait for the process (killed if it outlives the timeout); returns (code, output)."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, (out or b"").decode() + (err or b"").decode()


def interrupt_when(process: subprocess.Popen, ready: Callable[[], bool], sig: signal.Signals,
                   timeout: float = 90) -> None:
    """Send ``sig`` once ``ready()`` holds; fail if the run ended or never got there."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            _, output = finish(process)
            pytest.fail(f"the run ended (code {process.returncode}) before it could be "
                        f"interrupted mid-run:\n{output[-3000:]}")
        if time.monotonic() > deadline:
            finish(process, timeout=0.1)
            pytest.fail("the run never reached the point where it is interrupted")
        time.sleep(0.02)
    process.send_signal(sig)


def snapshot(*paths: Path) -> dict[str, bytes]:
    """File path -> bytes of every file under ``paths`` (files or folders)."""
    files = {}
    for path in paths:
        members = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files.update({str(p): p.read_bytes() for p in members})
    return files


def visible_names(folder: Path) -> set[str]:
    """Entries of ``folder`` that are not hidden staging files."""
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


def assert_clean_stop(sig: signal.Signals, code: int, output: str, folder: Path) -> None:
    """SIGINT: exit code 130 and no staging debris; SIGKILL: killed (debris is hidden)."""
    if sig == signal.SIGINT:
        assert code == 130, output[-3000:]
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], output[-2000:]
    else:
        assert code == -signal.SIGKILL


def write_pairs(folder: Path, count: int, size: tuple[int, int]) -> tuple[Path, Path]:
    visible, thermal = folder / "vi", folder / "ir"
    visible.mkdir(parents=True)
    thermal.mkdir()
    rng = np.random.default_rng(0)
    height, width = size
    for index in range(count):
        cv2.imwrite(str(visible / f"{index:03d}.png"),
                    rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        cv2.imwrite(str(thermal / f"{index:03d}.png"),
                    rng.integers(0, 256, (height, width), dtype=np.uint8))
    return visible, thermal


# ------------------------------------------------------------------ make-bag
def staged_storage_size(folder: Path) -> int:
    """Bytes staged so far; a file the writer removes meanwhile (SQLite's journal) counts 0."""
    total = 0
    for path in folder.glob(".*.partial-*/*/*"):
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            pass
    return total


@pytest.mark.parametrize("sig", SIGNALS)
def test_make_bag_interrupted_keeps_the_previous_bag(tmp_path, sig):
    visible, thermal = write_pairs(tmp_path / "frames", 4, (6, 8))
    out = tmp_path / "bags" / "drive"
    base = ["make-bag", str(out), "--visible", str(visible), "--thermal", str(thermal),
            "--no-progress"]
    assert finish(lutfuse(*base, "--max-frames", "2"))[0] == 0
    previous = snapshot(out)
    code, output = finish(lutfuse(*base))
    assert code == 1 and "--force" in output and snapshot(out) == previous
    # 4 frames at 1 Hz with thermal resampled at 60 kHz: ~200k messages, several seconds
    process = lutfuse(*base, "--rate", "1", "--thermal-rate", "60000", "--force")
    interrupt_when(process, lambda: staged_storage_size(out.parent) > 256 * 1024, sig)
    code, output = finish(process)
    assert_clean_stop(sig, code, output, out.parent)
    assert snapshot(out) == previous
    assert visible_names(out.parent) == {"drive"}


def test_make_bag_failing_on_a_bad_frame_keeps_the_previous_bag(tmp_path):
    visible, thermal = write_pairs(tmp_path / "frames", 6, (6, 8))
    out = tmp_path / "drive"
    base = ["make-bag", str(out), "--visible", str(visible), "--thermal", str(thermal),
            "--no-progress"]
    assert finish(lutfuse(*base))[0] == 0
    previous = snapshot(out)
    (thermal / "004.png").write_bytes(b"\x89PNG truncated by a full disk")
    code, output = finish(lutfuse(*base, "--force"))
    assert code == 1 and "004.png" in output
    assert snapshot(out) == previous
    assert visible_names(tmp_path) == {"frames", "drive"} and visible_names(tmp_path) == {
        p.name for p in tmp_path.iterdir()}


# ------------------------------------------------------------------ fuse
@pytest.mark.parametrize("sig", SIGNALS)
def test_fuse_interrupted_leaves_every_output_old_or_new_never_half(tmp_path, sig):
    visible, thermal = write_pairs(tmp_path / "frames", 24, (240, 320))
    out = tmp_path / "fused"
    out.mkdir()
    old = cv2.imencode(".png", np.full((240, 320, 3), 7, np.uint8))[1].tobytes()
    for index in range(24):
        (out / f"{index:03d}.png").write_bytes(old)
    args = ["fuse", "--visible", str(visible), "--thermal", str(thermal), "-o", str(out),
            "--model", "lutfuse-mmlut"]

    def some_replaced() -> bool:
        return any(p.read_bytes() != old for p in out.glob("[0-9]*.png"))

    process = lutfuse(*args, "--force")
    interrupt_when(process, some_replaced, sig)
    code, output = finish(process)
    assert_clean_stop(sig, code, output, out)
    assert visible_names(out) == {f"{index:03d}.png" for index in range(24)}
    contents = [(out / f"{index:03d}.png").read_bytes() for index in range(24)]
    assert old in contents, "the run finished before the interrupt: nothing was tested"
    for data in contents:
        if data != old:
            fused = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            assert fused is not None and fused.shape == (240, 320, 3), "a half-written output"
    before = snapshot(out)
    code, output = finish(lutfuse(*args))  # without --force nothing is replaced
    assert code == 0 and "already there" in output and snapshot(out) == before


def test_fuse_without_force_keeps_existing_files_and_grids(tmp_path, caplog):
    from lutfuse_ros.cli.main import main

    visible, thermal = write_pairs(tmp_path / "frames", 2, (12, 16))
    out = tmp_path / "fused"
    out.mkdir()
    (out / "000_grid.png").write_bytes(b"a grid the user kept")
    (out / "001.png").write_bytes(b"a result the user kept")
    args = ["fuse", "--visible", str(visible), "--thermal", str(thermal), "-o", str(out),
            "--model", "lutfuse-mini", "--grid"]
    assert main(args) == 0
    assert "kept the existing" in caplog.text and "000_grid.png" in caplog.text
    assert (out / "000_grid.png").read_bytes() == b"a grid the user kept"
    assert (out / "001.png").read_bytes() == b"a result the user kept"
    assert cv2.imread(str(out / "000.png")).shape == (12, 16, 3)
    assert not (out / "001_grid.png").exists()
    single = tmp_path / "single.png"
    single.write_bytes(b"earlier single result")
    assert main(["fuse", "--visible", str(visible / "000.png"), "--thermal",
                 str(thermal / "000.png"), "-o", str(single), "--model", "lutfuse-mini"]) == 0
    assert single.read_bytes() == b"earlier single result"
    assert main([*args, "--force"]) == 0
    assert cv2.imread(str(out / "000_grid.png")) is not None
    assert cv2.imread(str(out / "001.png")).shape == (12, 16, 3)


# ------------------------------------------------------------------ train
def previous_artifact(path: Path) -> bytes:
    model = MiniFusionNet()
    save_artifact(model, path, make_manifest(model, name="previous", description="kept",
                                             provenance={"source": "test_nothing_lost"}))
    return path.read_bytes()


@pytest.mark.parametrize("sig", SIGNALS)
def test_train_interrupted_keeps_the_previous_artifact(tmp_path, sig):
    write_pairs(tmp_path / "scenes", 2, (32, 32))
    output, run_dir = tmp_path / "models" / "teacher.safetensors", tmp_path / "run"
    output.parent.mkdir()
    previous = previous_artifact(output)
    config = tmp_path / "teacher.yaml"
    config.write_text(f"""
stage: teacher
name: interrupted
output: {output}
run_dir: {run_dir}
data: {{sources: [{{kind: folder, path: {tmp_path}/scenes}}], crop_size: 16, crops_per_epoch: 4,
       fixed_crops: true}}
train: {{epochs: 100000, batch_size: 2, lr: 1.0e-3, checkpoint_every: 2, log_every: 2}}
teacher_model: {{width: 2}}
""")
    code, message = finish(lutfuse("train", "teacher", "--config", str(config), "--no-progress"))
    assert code == 1 and "--force" in message and output.read_bytes() == previous
    process = lutfuse("train", "teacher", "--config", str(config), "--no-progress", "--force")
    checkpoint = run_dir / "checkpoint.pt"
    interrupt_when(process, checkpoint.exists, sig)
    code, message = finish(process)
    assert_clean_stop(sig, code, message, output.parent)
    assert output.read_bytes() == previous and visible_names(output.parent) == {output.name}
    assert load_artifact(output).manifest["name"] == "previous"
    import torch  # the checkpoint written before the interrupt is whole

    assert torch.load(checkpoint, weights_only=True)["progress"]["global_step"] >= 2


# ------------------------------------------------------------------ replay
@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    """3 s of 32x24 visible/thermal pairs at 10 Hz."""
    path = tmp_path_factory.mktemp("bags") / "in"
    with ImageBagWriter(path, "sqlite3") as writer:
        for index in range(30):
            stamp = START_NS + index * NS_PER_S // 10
            writer.write_image("/visible/image", np.full((24, 32, 3), 5 * index, np.uint8),
                               "bgr8", stamp, "cam")
            writer.write_image("/thermal/image", np.full((24, 32), 5 * index, np.uint8),
                               "mono8", stamp, "cam")
    return path


@pytest.mark.ros
@pytest.mark.parametrize("sig", SIGNALS)
def test_replay_interrupted_keeps_the_previous_results(small_bag, tmp_path, sig):
    results = tmp_path / "results"
    out, prefix = results / "fused", results / "report"
    with ImageBagWriter(out, "sqlite3") as writer:  # an earlier, complete recording
        writer.write_image("/fused/image", np.zeros((24, 32, 3), np.uint8), "bgr8", START_NS,
                           "cam")
    for suffix in (".json", ".md", "_latency.png"):
        Path(f"{prefix}{suffix}").write_text(f"earlier report {suffix}")
    previous = snapshot(out, *(Path(f"{prefix}{s}") for s in (".json", ".md", "_latency.png")))
    args = ["replay", str(small_bag), "--out", str(out), "--report", str(prefix),
            "--no-progress", "--domain-id", str(1 + (os.getpid() * 7 + sig) % 101)]
    code, output = finish(lutfuse(*args))
    assert code == 1 and "use --force" in output
    log = tmp_path / "replay.log"
    process = lutfuse(*args, "--force", "--rate", "0.25", stderr_to=log)
    interrupt_when(process, lambda: b"first fused image received" in log.read_bytes(), sig,
                   timeout=150)
    code, output = finish(process, timeout=90)
    output += log.read_text(errors="replace")
    if sig == signal.SIGINT:
        assert code == 130 and "keeping the earlier" in output, output[-3000:]
        assert "Interrupted" in output  # the partial run is still reported on stdout
    else:
        assert code == -signal.SIGKILL
    assert snapshot(*(Path(name) for name in previous)) == previous
    assert visible_names(results) - {"report_node.log"} == {
        "fused", "report.json", "report.md", "report_latency.png"}
    if sig == signal.SIGINT:
        assert not [p for p in results.iterdir() if p.name.startswith(".")]

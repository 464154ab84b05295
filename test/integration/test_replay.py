"""End to end: ``lutfuse make-bag`` -> ``lutfuse replay`` through the real fusion node.

Each test runs ``lutfuse replay`` in a subprocess, which starts the node (``lutfuse node``) in
a child process of its own on a private ``ROS_DOMAIN_ID``; the bags are the committed
``test/resources/bags/demo_{sqlite3,mcap}`` (40 frames of the moving demo scene at 64x48,
30 Hz, 16-bit thermal; ``scripts/make_test_bags.py`` writes them with ``lutfuse make-bag``),
so these tests run on a fresh clone without ``../shared``. Processes are always cleaned up:
the replay stops its node on every exit path, the node dies with the replay (parent-death
signal), and each test kills a replay that outlives it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lutfuse_ros.bag.common import IMAGE_TYPE, NS_PER_S
from lutfuse_ros.bag.reader import ImageBagReader, decode_thermal, decode_visible_bgr

pytestmark = [pytest.mark.slow, pytest.mark.ros]

REPO = Path(__file__).resolve().parents[2]
BAGS = REPO / "test" / "resources" / "bags"
FRAMES = 40
SIZE = (48, 64)
REPLAY_TIMEOUT_S = 240


@pytest.fixture(scope="module", autouse=True)
def real_node_available() -> None:
    """The real node must exist; say so plainly when it does not."""
    missing = [name for name in ("lutfuse_ros.ros.node", "lutfuse_ros.cli.node_cmd")
               if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the fusion node is not in this tree yet ({', '.join(missing)})")


def committed_bag(storage: str, tmp_path_factory) -> Path:
    """A private copy of the committed demo bag (the tree is never written to)."""
    source = BAGS / f"demo_{storage}"
    if not source.is_dir():
        pytest.fail(f"{source} is missing: run scripts/make_test_bags.py")
    copy = tmp_path_factory.mktemp("bags") / source.name
    shutil.copytree(source, copy)
    return copy


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    """The sqlite3 demo bag: 40 frames at 64x48, both topics at 30 Hz."""
    return committed_bag("sqlite3", tmp_path_factory)


@pytest.fixture(scope="module", params=["sqlite3", "mcap"])
def any_bag(request, tmp_path_factory) -> Path:
    """Each committed demo bag in turn."""
    return committed_bag(request.param, tmp_path_factory)


def private_domain(offset: int) -> int:
    """A ROS_DOMAIN_ID in 1..101 specific to this test process and test."""
    return 1 + (os.getpid() * 3 + offset) % 101


def replay_command(bag: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "lutfuse_ros.cli.main", "replay", str(bag), "--no-progress",
            *options]


def run_replay(bag: Path, *options: str) -> subprocess.CompletedProcess:
    """Run ``lutfuse replay`` to completion (killed, with its node, after the timeout)."""
    return subprocess.run(replay_command(bag, *options), cwd=REPO, capture_output=True,
                          text=True, timeout=REPLAY_TIMEOUT_S, check=False)


def input_stamps(bag: Path) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """Visible and thermal messages of a bag by stamp."""
    with ImageBagReader(bag) as reader:
        visible_topic, thermal_topic = reader.resolve_topics()
        by_topic: dict[str, dict[int, bytes]] = {visible_topic: {}, thermal_topic: {}}
        for message in reader.messages((visible_topic, thermal_topic)):
            by_topic[message.topic][message.stamp_ns] = message.cdr
    return by_topic[visible_topic], by_topic[thermal_topic]


def fused_messages(bag: Path) -> list:
    with ImageBagReader(bag) as reader:
        assert list(reader.topics) == ["/fused/image"]
        assert reader.topics["/fused/image"].msgtype == IMAGE_TYPE
        return list(reader.messages(["/fused/image"]))


def assert_process_gone(pid: int | None) -> None:
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def check_report(prefix: Path, domain: int, min_ratio: float) -> dict:
    """The report files exist and hold sane numbers; returns the JSON."""
    report = json.loads(Path(f"{prefix}.json").read_text())
    frames, latency = report["frames"], report["latency"]
    assert report["setup"]["domain_id"] == domain
    assert frames["visible_in"] == frames["thermal_in"] == FRAMES
    assert frames["pairs_expected"] == FRAMES
    assert frames["fused_matched"] >= min_ratio * FRAMES
    assert frames["delivered_ratio"] == pytest.approx(frames["fused_matched"] / FRAMES)
    assert frames["unmatched_outputs"] == 0
    assert report["sync"]["visible_without_output"] == FRAMES - frames["fused_matched"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] < 10_000
    assert report["rates"]["fused_rate_hz"] > 0
    assert report["metrics"]["frames_evaluated"] >= 1
    assert 0 < report["metrics"]["EN"] <= 8 and report["metrics"]["SD"] > 0
    assert int(report["sync"]["node"]["total published"]) == frames["fused_out"]
    assert "# Replay of" in Path(f"{prefix}.md").read_text()
    assert Path(f"{prefix}_latency.png").read_bytes()[:4] == b"\x89PNG"
    assert "fusion_node" in Path(f"{prefix}_node.log").read_text()
    assert_process_gone(report["setup"]["node_pid"])
    return report


def test_committed_bags_are_what_make_bag_writes(any_bag):
    with ImageBagReader(any_bag) as reader:
        visible_topic, thermal_topic = reader.resolve_topics()
        assert {reader.topics[t].msgtype for t in (visible_topic, thermal_topic)} == {IMAGE_TYPE}
        messages = list(reader.messages((visible_topic, thermal_topic)))
    assert len(messages) == 2 * FRAMES
    first_visible = next(m for m in messages if m.topic == visible_topic)
    first_thermal = next(m for m in messages if m.topic == thermal_topic)
    assert decode_visible_bgr(first_visible.cdr).shape == SIZE + (3,)
    assert decode_thermal(first_thermal.cdr).dtype == np.uint16


def test_replay_as_fast_as_possible_records_fused_images(any_bag, tmp_path):
    small_bag = any_bag
    domain = private_domain(0)
    out, prefix = tmp_path / "fused", tmp_path / "report"
    result = run_replay(small_bag, "--out", str(out), "--report", str(prefix),
                        "--as-fast-as-possible", "--domain-id", str(domain))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| fused_matched |" in result.stdout

    visible, thermal = input_stamps(small_bag)
    fused = fused_messages(out)
    stamps = [m.stamp_ns for m in fused]
    assert len(stamps) >= 0.95 * FRAMES
    assert set(stamps) <= set(visible)
    assert stamps == sorted(set(stamps))
    # the fused images come from the right pairs: close to fusing the same pair offline
    from lutfuse_ros.pipeline import FusionPipeline

    pipeline = FusionPipeline.from_artifact("lutfuse-mmlut")
    for message in (fused[0], fused[len(fused) // 2]):
        expected = pipeline.fuse(decode_visible_bgr(visible[message.stamp_ns]),
                                 decode_thermal(thermal[message.stamp_ns]))
        got = decode_visible_bgr(message.cdr)
        assert got.shape == SIZE + (3,)
        assert np.abs(got.astype(np.int16) - expected).mean() < 1.0

    report = check_report(prefix, domain, min_ratio=0.95)
    assert report["frames"]["fused_out"] == len(fused)
    assert report["sync"]["flow_control_timeouts"] == 0
    # temporal stability of the middle 30 pairs, as recomputed from the recorded bag
    from lutfuse_ros.bag.records import temporal_window
    from lutfuse_ros.bag.report import temporal_stability_of_samples

    window = [v for v, _ in temporal_window(sorted(visible.items()), 30)]
    recorded = {m.stamp_ns: m.cdr for m in fused}
    offline = temporal_stability_of_samples(
        [(decode_visible_bgr(recorded[s]), decode_visible_bgr(visible[s]),
          decode_thermal(thermal[s])) for s in window if s in recorded])
    temporal = report["temporal"]
    assert temporal["frames_evaluated"] == offline["frames_evaluated"] >= 25
    assert temporal["tRWE"] == pytest.approx(offline["tRWE"])
    assert 0 < temporal["tRWE"] < 5 and temporal["source_vi_tRWE"] > 0
    # a second run refuses to overwrite anything
    again = run_replay(small_bag, "--out", str(out), "--report", str(prefix),
                       "--domain-id", str(domain))
    assert again.returncode == 1 and "--force" in again.stderr


def test_rosbag1_input_in_real_time(small_bag, tmp_path):
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    ros1 = get_typestore(Stores.ROS1_NOETIC)
    ros2 = get_typestore(Stores.ROS2_KILTED)
    bag1 = tmp_path / "clip.bag"
    with ImageBagReader(small_bag) as reader, Writer(bag1) as writer:
        topics = reader.resolve_topics()
        connections = {t: writer.add_connection(t, IMAGE_TYPE, typestore=ros1) for t in topics}
        for message in reader.messages(topics):
            writer.write(connections[message.topic], message.log_ns,
                         ros2.cdr_to_ros1(message.cdr, IMAGE_TYPE))
    domain = private_domain(1)
    out, prefix = tmp_path / "fused", tmp_path / "report"
    # In real time the node drops what it cannot fuse (the latest pair wins); on a loaded
    # 2-core machine, with the model warming up, that can be most of a 1.3 s clip, so this
    # test checks the timing and the accounting, the fast test above the delivery ratio.
    result = run_replay(bag1, "--out", str(out), "--report", str(prefix), "--storage", "mcap",
                        "--rate", "1.0", "--domain-id", str(domain),
                        "--node-param", "artifact:=lutfuse-mini")
    assert result.returncode == 0, result.stderr[-3000:]
    report = check_report(prefix, domain, min_ratio=0.05)
    assert report["setup"]["mode"] == "real time x1"
    assert int(report["sync"]["node"]["total pairs"]) == FRAMES
    assert report["setup"]["node_params"] == ["artifact:=lutfuse-mini"]
    # real time: 40 frames at 30 Hz take about 1.3 s to play
    assert 1.1 < report["rates"]["play_wall_s"] < 5.0
    visible, _ = input_stamps(small_bag)
    assert {m.stamp_ns for m in fused_messages(out)} <= set(visible)


def test_a_node_that_fails_to_configure_is_reported(small_bag, tmp_path):
    out = tmp_path / "fused"
    result = run_replay(small_bag, "--out", str(out), "--report", str(tmp_path / "report"),
                        "--domain-id", str(private_domain(3)), "--node-param",
                        "output.encoding:=yuv422")
    assert result.returncode == 1
    assert "fusion node exited" in result.stderr and "output.encoding" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report_node.log"]
    # A sync value the node would refuse is refused by replay itself (it predicts the node's
    # pairs with the node's own settings schema), naming it, before any node starts.
    early = tmp_path / "early"
    result = run_replay(small_bag, "--out", str(early / "fused"), "--domain-id",
                        str(private_domain(3)), "--node-param", "sync.slop:=5.0")
    assert result.returncode == 1 and "'sync.slop' = 5.0 is out of range" in result.stderr
    assert not early.exists()


def test_no_external_node_times_out_with_a_hint(small_bag, tmp_path):
    result = run_replay(small_bag, "--out", str(tmp_path / "fused"), "--node", "external",
                        "--domain-id", str(private_domain(4)), "--node-timeout", "1")
    assert result.returncode == 1
    assert "0 subscriber(s)" in result.stderr and "ROS_DOMAIN_ID" in result.stderr
    assert list(tmp_path.iterdir()) == []


def _stderr_lines(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue, needle: str, timeout_s: float) -> list[str]:
    seen = []
    while True:
        line = lines.get(timeout=timeout_s)
        if line is None:
            raise AssertionError(f"replay ended before {needle!r}:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if needle in line:
            return seen


def test_ctrl_c_stops_cleanly_and_keeps_the_recording(small_bag, tmp_path):
    domain = private_domain(2)
    out, prefix = tmp_path / "fused", tmp_path / "report"
    # 40 frames at a tenth of their speed take 13 s: the interrupt lands mid-playback
    process = subprocess.Popen(
        replay_command(small_bag, "--out", str(out), "--report", str(prefix), "--rate", "0.1",
                       "--domain-id", str(domain)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _stderr_lines(process)
        _wait_for_line(lines, "first fused image received", REPLAY_TIMEOUT_S)
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Interrupted" in stdout
    report = json.loads(Path(f"{prefix}.json").read_text())
    assert report["interrupted"] is True
    assert 1 <= report["frames"]["visible_in"] < FRAMES
    assert_process_gone(report["setup"]["node_pid"])
    recorded = fused_messages(out)
    assert 1 <= len(recorded) == report["frames"]["fused_out"]
    assert recorded[0].stamp_ns >= int(1.7e9) * NS_PER_S
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

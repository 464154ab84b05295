"""What a ROS camera pipeline expects of the node, each in a real graph of processes.

``fused/camera_info`` that matches every fused image, compressed camera input, and no
fusion while nobody listens.
"""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest
from ros_node_harness import load_recording, open_graph, wait_for

from lutfuse_ros.camera_geometry import alignment_transform, fused_camera_model
from lutfuse_ros.image_codec import decode_image, encode_image
from lutfuse_ros.pipeline import FusionPipeline, PipelineConfig
from lutfuse_ros.preprocessing import AlignmentConfig
from lutfuse_ros.ros.camera_info import camera_model_of
from lutfuse_testing.camera_frames import synthetic_camera_info, synthetic_pair
from lutfuse_testing.node_probe import NodeProbe

pytestmark = pytest.mark.ros

BASE = {"artifact": "lutfuse-mini", "backend": "torch", "backend_threads": 1}


@pytest.fixture
def ros_graph(tmp_path):
    """Processes of one test on a private ROS domain, always cleaned up."""
    yield from open_graph(tmp_path)


def start_recorder(ros_graph, name: str, topic: str, kind: str, ready: bool = True,
                   qos: str = "sensor_data") -> tuple[subprocess.Popen, object, object]:
    """A second recorder process (same done file as :meth:`RosGraph.run_traffic`)."""
    out, ready_file = ros_graph.tmp / f"{name}.npz", ros_graph.tmp / f"{name}_ready"
    options = ["--topic", topic, "--type", kind, "--done-file", str(ros_graph.tmp / "done"),
               "--out", str(out)] + (["--ready-file", str(ready_file)] if ready else [])
    return ros_graph.traffic("record", name, *options, qos=qos), out, \
        ready_file


def test_fused_camera_info_has_each_fused_images_header_size_and_adjusted_intrinsics(
        ros_graph):
    alignment = {"mode": "resize_visible", "crop": [3, 2, 26, 19]}
    ros_graph.start_node({**BASE, "alignment": alignment})
    ros_graph.wait_until_active()
    info_recorder, info_out, info_ready = start_recorder(ros_graph, "info", "fused/camera_info",
                                                         "camera_info")
    published, images = ros_graph.run_traffic(
        ["--size", "64", "48", "--thermal-size", "32", "24", "--rate", "10", "--count", "20",
         "--camera-info"], ["--save-images"], also_ready=(info_ready,))
    assert info_recorder.wait(60) == 0, ros_graph.log("info")
    with np.load(info_out) as info:
        by_stamp = {int(stamp): (str(frame), tuple(size), k, p) for stamp, frame, size, k, p in
                    zip(info["stamp_ns"], info["frame_id"], info["size"], info["k"], info["p"])}

    transform, size = alignment_transform(
        AlignmentConfig(mode="resize_visible", crop=tuple(alignment["crop"])), (64, 48), (32, 24))
    expected = fused_camera_model(camera_model_of(synthetic_camera_info(64, 48)), transform,
                                  size)
    sent = {pair["stamp_ns"] for pair in published}
    fused = [i for i, stamp in enumerate(images.stamp_ns) if int(stamp) in sent]
    assert len(fused) == len(published), ros_graph.log("node")
    for index in fused:
        stamp = int(images.stamp_ns[index])
        assert stamp in by_stamp, f"no fused/camera_info stamped like fused image {stamp}"
        frame_id, info_size, k, p = by_stamp[stamp]
        height, width = images.images[index].shape[:2]
        assert frame_id == images.frame_id[index] and info_size == (width, height) == size
        assert np.allclose(k, expected.k) and np.allclose(p, expected.p)
    # The crop moved the principal point, the resize halved the focal length.
    assert k[0] == pytest.approx(synthetic_camera_info(64, 48).k[0] / 2)


def test_without_camera_info_in_nothing_is_published_on_fused_camera_info(ros_graph):
    ros_graph.start_node({**BASE, "alignment": {"mode": "resize_visible"}})
    ros_graph.wait_until_active()
    info_recorder, info_out, _ = start_recorder(ros_graph, "info", "fused/camera_info",
                                                "camera_info", ready=False)
    published, images = ros_graph.run_traffic(
        ["--size", "64", "48", "--thermal-size", "32", "24", "--rate", "10", "--count", "10"])
    assert info_recorder.wait(60) == 0, ros_graph.log("info")
    assert int(images.measured.sum()) == len(published)  # fused images did come out
    assert len(load_recording(info_out).stamp_ns) == 0


def reference(pair: dict, thermal_bits: int) -> np.ndarray:
    """The pipeline's output for what the node decodes from the published JPEG and PNG."""
    visible, thermal = synthetic_pair(pair["content"], 64, 48, thermal_bits=thermal_bits)
    decoded_visible, _ = decode_image(encode_image(visible, "jpeg", 90))
    decoded_thermal, _ = decode_image(encode_image(thermal, "png"))
    pipeline = FusionPipeline.from_artifact("lutfuse-mini", backend="torch",
                                            config=PipelineConfig(), precision="auto")
    return pipeline.fuse(decoded_visible, decoded_thermal)


def test_compressed_jpeg_and_16_bit_png_input_broken_payloads_counted_never_fatal(ros_graph):
    ros_graph.start_node({**BASE, "input": {"visible_transport": "compressed",
                                            "thermal_transport": "compressed"}})
    ros_graph.wait_until_active()
    published, recording = ros_graph.run_traffic(
        ["--size", "64", "48", "--rate", "10", "--count", "36", "--thermal-bits", "16",
         "--visible-transport", "compressed", "--thermal-transport", "compressed",
         "--corrupt-every", "4"], ["--save-images", "--diagnostics"])

    by_stamp = {pair["stamp_ns"]: pair for pair in published}
    kinds = [pair["kind"] for pair in published]
    good = [pair for pair in published if pair["kind"] == "good"]
    fused = {int(stamp): index for index, stamp in enumerate(recording.stamp_ns)
             if int(stamp) in by_stamp}
    assert set(fused) == {pair["stamp_ns"] for pair in good}, ros_graph.log("node")
    for stamp, index in list(fused.items())[:6]:
        assert np.array_equal(recording.images[index], reference(by_stamp[stamp], 16))

    final = recording.statuses(ros_graph.namespace)[-1]["values"]
    undecodable = kinds.count("truncated_jpeg") + kinds.count("corrupt_jpeg")
    assert int(final["total undecodable_visible"]) == undecodable > 0
    assert int(final["total rejected_visible"]) == kinds.count("not_an_image") > 0
    assert int(final["total failed"]) == 0
    warned = [line for line in ros_graph.log("node").splitlines() if "did not decode" in line
              and "]: diagnostics: " not in line]
    assert 1 <= len(warned) < undecodable, ros_graph.log("node")  # throttled
    assert any("compressed image(s) did not decode" in s["message"]
               for s in recording.statuses(ros_graph.namespace))


def test_no_fusion_without_a_subscriber_and_no_gap_after_the_first_one(ros_graph):
    ros_graph.start_node({**BASE, "diagnostics": {"period": 0.5}})
    ros_graph.wait_until_active()
    probe = NodeProbe(ros_graph.domain_id, ros_graph.namespace, rate=10.0, subscribe=False)
    try:
        probe.set_streams(visible=True, thermal=True)
        idle = probe.wait_status(lambda s: int(s.values["total idle"]) >= 10,
                                 what="10 idle pairs")
        assert idle.values["total published"] == "0" and idle.level == 0
        assert "idle" in idle.message and idle.values["total pairs"] == idle.values["total idle"]

        probe.subscribe_fused()
        wait_for(probe.fused_matched, 30, interval=0.005,
                 what="the fused/image subscription to match")
        matched_at = time.monotonic()
        first = probe.wait_outputs(5)[0]
        later = sorted(stamp for sent, stamp in probe.published if sent >= matched_at)
        # The first pair published after the subscription matched (or the one after it,
        # for discovery finishing on the node's side a little later) is fused.
        assert first.stamp_ns <= later[1], (first.stamp_ns, later[:3])
        status = probe.wait_ok()
        assert int(status.values["total published"]) > 0
    finally:
        probe.close()


def test_default_middleware_camera_sends_jpeg_and_camera_info(ros_graph):
    """Run the issue's re-run: a default-middleware JPEG camera with camera_info.

    A camera in another process with the middleware's defaults (no Fast DDS profile
    variables), reliable, 640x480 JPEG on visible/image/compressed, raw thermal and
    visible/camera_info; the node with input.visible_transport compressed.
    """
    ros_graph.start_node({**BASE, "input": {"visible_transport": "compressed"},
                          "qos": {"input": "reliable"}})
    ros_graph.wait_until_active()
    tmp = ros_graph.tmp
    # Reliable consumers: what is checked here is the camera side (a best-effort consumer of
    # 640x480 frames depends on the node's transport profile being applied, which Fast DDS
    # 2.14 of Jazzy reads from FASTRTPS_DEFAULT_PROFILES_FILE only).
    image_recorder, image_out, image_ready = start_recorder(ros_graph, "images", "fused/image",
                                                            "image", qos="reliable")
    info_recorder, info_out, info_ready = start_recorder(
        ros_graph, "infos", "fused/camera_info", "camera_info", qos="reliable")
    camera = ros_graph.traffic(
        "publish", "camera", "--size", "640", "480", "--rate", "10", "--count", "40",
        "--visible-transport", "compressed", "--camera-info", "--ready-file", str(image_ready),
        "--ready-file", str(info_ready), "--done-file", str(tmp / "done"), "--log",
        str(tmp / "published.json"), "--linger-until", str(info_out),
        middleware_defaults=True, qos="reliable")
    for name, process in (("camera", camera), ("images", image_recorder),
                          ("infos", info_recorder)):
        assert process.wait(180) == 0, f"{name}:\n{ros_graph.log(name)}\n{ros_graph.log('node')}"

    published = json.loads((tmp / "published.json").read_text())["pairs"]
    sent = {pair["stamp_ns"] for pair in published}
    images, infos = load_recording(image_out), np.load(info_out)
    image_bytes = np.load(image_out)["bytes"]
    fused = [(int(stamp), int(size)) for stamp, size in zip(images.stamp_ns, image_bytes)
             if int(stamp) in sent]
    info_by_stamp = {int(stamp): tuple(size) for stamp, size in zip(infos["stamp_ns"],
                                                                    infos["size"])}
    print(f"default-middleware JPEG camera: {len(fused)}/40 fused images, "
          f"{sum(stamp in info_by_stamp for stamp, _ in fused)} with camera_info")
    assert len(published) == 40 and len(fused) >= 38, ros_graph.log("node")
    for stamp, size_bytes in fused:
        assert info_by_stamp.get(stamp) == (640, 480), stamp
        assert size_bytes == 640 * 480 * 3

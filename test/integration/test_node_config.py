"""Parameters and lifecycle of the fusion node process.

Bad values fail configure with a message naming the parameter, a valid parameters file
applies, and the lifecycle services drive configure/activate/deactivate/cleanup.
"""

from __future__ import annotations

import numpy as np
import pytest
from ros_node_harness import LifecycleClient, load_recording, open_graph, wait_for

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_graph(tmp_path):
    """Processes of one test on a private ROS domain, always cleaned up."""
    yield from open_graph(tmp_path)


@pytest.mark.parametrize("parameters, arguments, parameter", [
    ({}, ["-p", "sync.slop:=-1.0"], "sync.slop"),                   # out of the range
    ({"sync": {"queue_size": 2.5}}, [], "sync.queue_size"),          # wrong type (file)
    ({}, ["-p", "output.encoding:=bgr16"], "output.encoding"),       # not one of the choices
    ({}, ["-p", "artifact:=/nonexistent/model.safetensors"], "artifact"),
])
def test_bad_parameter_fails_configure_naming_it(ros_graph, parameters, arguments, parameter):
    # (rcl silently ignores a "-p" that changes the type a params file gave a value, so the
    # wrong type is written into the params file.)
    process = ros_graph.start_node({"artifact": "lutfuse-mini", **parameters}, *arguments)
    code = process.wait(120)
    log = ros_graph.log("node")
    assert code == 1, log
    failure = next((line for line in log.splitlines() if "configure failed" in line), "")
    assert f"'{parameter}'" in failure, log
    assert ": active: " not in log


def test_valid_params_file_applies(ros_graph):
    ros_graph.start_node({
        "artifact": "lutfuse-mini", "backend": "torch", "backend_threads": 1,
        "sync": {"thermal_offset": 0.05},
        "output": {"encoding": "mono8", "frame_id": "fused_optical_frame",
                   "stamp_source": "thermal", "max_rate": 15.0, "compressed": "jpeg"}})
    ros_graph.wait_until_active()
    compressed_out = ros_graph.tmp / "compressed.npz"
    compressed_ready = ros_graph.tmp / "compressed_ready"
    compressed = ros_graph.traffic("record", "compressed", "--topic", "fused/image/compressed",
                                   "--type", "compressed", "--ready-file", str(compressed_ready),
                                   "--done-file", str(ros_graph.tmp / "done"), "--out",
                                   str(compressed_out))
    published, recording = ros_graph.run_traffic(
        ["--rate", "30", "--count", "60", "--thermal-offset", "0.05"], ["--save-images"],
        also_ready=(compressed_ready,))
    assert compressed.wait(60) == 0, ros_graph.log("compressed")

    # Pairs only form if sync.thermal_offset cancels the 50 ms offset (slop is 25 ms); the
    # output carries the thermal stamp (the frame id replaces the warm-up marker, so the
    # measured outputs are told apart by their stamps).
    thermal_stamps = [pair["thermal_stamp_ns"] for pair in published]
    measured = np.isin(recording.stamp_ns, thermal_stamps)
    assert measured.any(), ros_graph.log("node")
    assert set(recording.frame_id) == {"fused_optical_frame"}
    assert not np.isin(recording.stamp_ns, [pair["stamp_ns"] for pair in published]).any()
    assert recording.images.ndim == 3  # (N, H, W): mono8
    # 30 Hz input limited to 15 Hz: half of the 60 pairs.
    assert abs(int(measured.sum()) - 30) <= 2, int(measured.sum())
    jpeg = load_recording(compressed_out)
    assert len(jpeg.stamp_ns) > 0 and set(jpeg.frame_id) <= {"fused_optical_frame"}


def test_lifecycle_services_and_parameter_updates(ros_graph):
    ros_graph.start_node({"autostart": False, "artifact": "lutfuse-mini", "backend": "torch"},
                         "-p", "output.encoding:=bgr16")
    client = LifecycleClient(ros_graph.domain_id, f"{ros_graph.namespace}/fusion_node")
    try:
        assert client.state() == "unconfigured"
        assert client.transition("configure") is False
        wait_for(lambda: "'output.encoding'" in ros_graph.log("node"), 10,
                 what=lambda: ros_graph.log("node"))
        assert client.state() == "unconfigured"

        ok, reason = client.set_parameter("output.encoding", "rainbow")
        assert not ok and "output.encoding" in reason
        ok, reason = client.set_parameter("sync.slop", 5.0)
        assert not ok and "sync.slop" in reason
        assert client.set_parameter("output.encoding", "mono8") == (True, "")

        assert client.transition("configure") is True
        assert client.state() == "inactive"
        assert client.transition("activate") is True
        assert client.state() == "active"
        wait_for(lambda: ": active: " in ros_graph.log("node"), 10)
        assert client.transition("deactivate") is True
        assert client.transition("cleanup") is True
        assert client.state() == "unconfigured"
    finally:
        client.close()
    assert ros_graph.stop("node") == 0, ros_graph.log("node")

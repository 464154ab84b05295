"""Frames from an ordinary camera driver: a camera process on the middleware's defaults.

The camera process has no Fast DDS profile and no Fast DDS variable in its environment (as a
user's driver runs); the node runs with its default QoS (``qos.input: auto``) and transport
settings. It publishes 640x480 and 1280x720 pairs, reliable and best effort; the fused pairs
that come back are counted. Reliable cameras must get >= 99% through (the node subscribes
reliable to them). A best-effort camera whose middleware loses large frames in its own process
cannot be helped by the node: either >= 99% arrive, or ``/diagnostics`` must say so, naming
the publisher's QoS, the measured delivery and the fix for the Fast DDS in use.

The model is lutfuse-mini on one thread (a fast model, so that the count measures transport
and not the CPU; 1280x720 pairs come at 5 Hz, which a loaded 2-core machine still fuses);
every other parameter is the default. For reliable cameras the node's own delivery
measurement (sequence numbers, lost-sample events) must also show >= 95% arrived and no loss
report; where the CPU cannot keep up (a loaded 2-core machine at 1280x720: the node reports
pairs dropped for newer ones, latest pair wins) fewer than 99% come back, and the count is
printed (at least half must).
"""

from __future__ import annotations

import re

import pytest
from ros_node_harness import open_graph

from lutfuse_ros.ros.fastdds_version import detect_fastdds
from lutfuse_ros.ros.transport import profile_variables

pytestmark = pytest.mark.ros

PAIRS = 40
RATE_HZ = {(640, 480): 10.0, (1280, 720): 5.0}
#: History depth of the camera's publishers: ROS 2's default profile (image_transport's
#: default, reliable) keeps 10, the sensor-data profile (best effort) 5.
CAMERA_DEPTH = {"reliable": 10, "sensor_data": 5}


@pytest.fixture
def ros_graph(tmp_path):
    """Processes of one test on a private ROS domain, always cleaned up."""
    yield from open_graph(tmp_path)


def loss_reports(statuses: list[dict]) -> list[str]:
    """Diagnostics messages of the node that report frames lost before reaching it."""
    return [status["message"] for status in statuses
            if status["level"] >= 1 and "frames lost before reaching the node" in
            status["message"]]


@pytest.mark.parametrize("camera_qos", ["reliable", "sensor_data"])
@pytest.mark.parametrize("width, height", [(640, 480), (1280, 720)])
def test_default_middleware_camera_pairs_come_back_fused(ros_graph, width, height, camera_qos):
    ros_graph.start_node({"artifact": "lutfuse-mini", "backend": "torch", "backend_threads": 1})
    ros_graph.wait_until_active()
    published, recording = ros_graph.run_traffic(
        ["--size", str(width), str(height), "--rate", str(RATE_HZ[width, height]),
         "--count", str(PAIRS),
         "--distinct", "2"], ["--diagnostics"], timeout=150,
        camera_middleware_defaults=True, camera_qos=camera_qos,
        camera_depth=CAMERA_DEPTH[camera_qos], recorder_qos="reliable")

    sent = {pair["stamp_ns"] for pair in published}
    back = len({int(s) for s in recording.stamp_ns[recording.measured]} & sent)
    statuses = recording.statuses(ros_graph.namespace)
    reports = loss_reports(statuses)
    node_log = ros_graph.log("node")
    print(f"{width}x{height} camera {camera_qos} on middleware defaults: {back}/{len(sent)} "
          f"fused pairs back; loss reports: {reports[-1:] or 'none'}")
    assert len(published) == PAIRS
    if camera_qos == "reliable":
        assert re.search(r"visible/image subscribed reliable \(auto: publishers \S+ "
                         r"\(reliable\)\)", node_log), node_log
        final = statuses[-1]["values"]
        if reports and (width, height) == (1280, 720):
            # A starved machine (the full suite beside other jobs on 2 cores) can make even a
            # reliable 2.7 MB stream lose frames (writer and reader history overflow while
            # acknowledgements lag); then the node must say so, naming the reliable QoS.
            print(f"  starved: {reports[-1]}")
            assert "subscribed reliable" in reports[-1] and "qos.input_depth" in reports[-1]
            return
        # Transport: the node's own count (sequence numbers, lost-sample events) saw (almost)
        # every frame arrive, and it never reported a loss.
        assert not reports, reports
        for stream in ("visible", "thermal"):
            delivery = re.match(r"(\d+) of ~(\d+) frames", final[f"{stream} delivery"])
            assert delivery and int(delivery.group(1)) >= 0.95 * int(delivery.group(2)), (
                f"{stream} delivery: {final[f'{stream} delivery']}\n{node_log}")
        overtaken = int(final["total queue drops (newer pair won)"])
        if back < 0.99 * PAIRS:
            # The frames arrived (checked above), but not all came back. A reliable 1280x720
            # stream from a camera on middleware defaults stalls for 1-3 s now and then, even
            # to a trivial subscriber (a lost UDP fragment waits for the writer's next
            # heartbeat), then arrives in a burst. The node fuses the newest pair of the burst
            # (latest pair wins) and the synchroniser drops the frames the other stream's
            # queue could not hold. What this checks is that the node counts every pair that
            # did not come back.
            unpaired = max(int(final[f"total sync dropped_{stream}"])
                           for stream in ("visible", "thermal"))
            late = int(final["total sync late_or_out_of_order"])
            print(f"  behind: {overtaken} pairs overtaken by newer ones, {unpaired} frames "
                  f"unpaired, {late} late, in all")
            assert overtaken + unpaired > 0, (
                f"{back}/{PAIRS} pairs back although the node dropped none; last diagnostics "
                f"{statuses[-1:]}\n{node_log}")
            assert back + overtaken + unpaired + late >= 0.95 * PAIRS, (
                f"{back}/{PAIRS} pairs back, {overtaken} overtaken, {unpaired} unpaired and "
                f"{late} late: pairs went missing without a count; last diagnostics "
                f"{statuses[-1:]}\n{node_log}")
            if (width, height) == (640, 480):  # no stall seen at this size
                assert back >= 0.5 * PAIRS, f"{back}/{PAIRS} pairs back\n{node_log}"
        return
    assert re.search(r"visible/image subscribed best effort \(auto: publishers \S+ "
                     r"\(best effort\)\)", node_log), node_log
    if back >= 0.99 * PAIRS:
        return
    assert reports, (f"only {back}/{PAIRS} pairs back from a best-effort camera and no "
                     f"diagnostics report of the loss: {statuses[-3:]}\n{node_log}")
    report = reports[-1]
    assert "(best effort)" in report and "subscribed best effort" in report, report
    ratio = re.search(r"(\d+) of ~(\d+) frames \((\d+)%\)", report)
    assert ratio and int(ratio.group(1)) < int(ratio.group(2)), report
    variable = profile_variables(detect_fastdds())[0]
    assert f"export {variable}=" in report and "or publish reliable" in report, report
    assert "frames lost before reaching the node" in node_log, "the loss was not logged"

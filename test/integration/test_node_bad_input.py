"""Bad messages reaching the fusion node are logged (throttled per kind) and dropped.

The node keeps fusing the good pairs around them.
"""

from __future__ import annotations

import pytest
from ros_node_harness import open_graph

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_graph(tmp_path):
    """Processes of one test on a private ROS domain, always cleaned up."""
    yield from open_graph(tmp_path)


# What the node logs for each corruption the publisher applies (see traffic.CORRUPTIONS).
LOG_SIGNATURES = {
    "encoding": "dropped visible image: visible image has unsupported encoding '32FC1'",
    "truncated": "data is truncated",
    "short_step": "is smaller than one row",
    "size_mismatch": "but thermal image is 32x24",
}


def test_bad_messages_are_logged_throttled_dropped_and_good_pairs_still_served(ros_graph):
    ros_graph.start_node({"artifact": "lutfuse-mini", "backend": "torch", "backend_threads": 1,
                          "diagnostics": {"log_throttle": 600.0}})
    ros_graph.wait_until_active()
    # Every third pair is broken, in turn: unsupported encoding, thermal of another size,
    # truncated data, step shorter than a row (each 4 times); the last pair is good.
    published, recording = ros_graph.run_traffic(
        ["--rate", "10", "--count", "49", "--corrupt-every", "3"], ["--diagnostics"])

    good = {p["stamp_ns"] for p in published if p["kind"] == "good"}
    bad = {p["stamp_ns"] for p in published if p["kind"] != "good"}
    delivered = set(recording.stamp_ns[recording.measured].tolist())
    assert len(bad) == 16 and len(good) == 33
    assert not delivered & bad, "a broken pair was published"
    assert delivered == good, f"good pairs lost: {sorted(good - delivered)}"

    log = ros_graph.log("node")
    for kind, signature in LOG_SIGNATURES.items():
        lines = [line for line in log.splitlines() if signature in line]
        # Four occurrences of each kind, logged once within the 600 s throttle window.
        assert len(lines) == 1, f"{kind}: {len(lines)} log lines\n{log}"
        assert lines[0].startswith("[WARN]")
    final = recording.statuses(ros_graph.namespace)[-1]["values"]
    assert final["total rejected_visible"] == "12"
    assert final["total failed"] == "4"
    # The thermal partner of each rejected visible image cannot pair and is dropped.
    assert final["total sync dropped_thermal"] == "12"

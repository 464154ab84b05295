"""Faults a fusion node meets on a vehicle, each in a real ROS graph.

The node logs each fault (throttled), reports it in /diagnostics, and recovers by itself
without a restart.

The cameras are played by :class:`lutfuse_testing.node_probe.NodeProbe` in the test process
(streams can stop, resume and jump in time) or by ``lutfuse_testing.camera_traffic``
processes (killed and restarted); the tests wait for states and counts, never for fixed
times.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from ros_node_harness import REPO, open_graph

from lutfuse_ros.artifacts import shipped_models
from lutfuse_testing.node_probe import NodeProbe

pytestmark = pytest.mark.ros

#: Parameters of every node here: one torch thread, fast reports, silence after 2 s.
BASE = {"backend": "torch", "backend_threads": 1,
        "diagnostics": {"period": 0.5, "stream_timeout": 2.0}}
WARN, ERROR = 1, 2


@pytest.fixture
def ros_graph(tmp_path):
    """Processes of one test on a private ROS domain, always cleaned up."""
    yield from open_graph(tmp_path)


@pytest.fixture
def make_probe(ros_graph):
    """Create :class:`NodeProbe` participants in the graph; closed before the graph."""
    probes = []

    def make(**options) -> NodeProbe:
        probe = NodeProbe(ros_graph.domain_id, ros_graph.namespace, **options)
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


def start_node(ros_graph, artifact: str = "lutfuse-mini", **overrides) -> None:
    diagnostics = {**BASE["diagnostics"], **overrides.pop("diagnostics", {})}
    ros_graph.start_node({**BASE, "artifact": artifact, **overrides,
                          "diagnostics": diagnostics})
    ros_graph.wait_until_active()


def log_lines(ros_graph, fragment: str, name: str = "node") -> list[str]:
    """Log lines of a process with ``fragment``, except the periodic diagnostics summary."""
    return [line for line in ros_graph.log(name).splitlines()
            if fragment in line and "]: diagnostics: " not in line]


def test_silent_streams_warn_and_fusion_resumes_when_they_return(ros_graph, make_probe):
    start_node(ros_graph)
    probe = make_probe()
    probe.set_streams(visible=True, thermal=True)
    probe.wait_outputs(5)
    probe.wait_ok()

    for stream in ("thermal", "visible"):
        probe.set_streams(**{stream: False})
        silent = probe.wait_status(
            lambda s: s.level == WARN and f"{stream} stream silent for" in s.message,
            what=f"WARN '{stream} stream silent'")
        assert silent.values[f"total {stream} silences"] == "1"
        # While one camera is silent nothing pairs, so nothing is fused.
        later = probe.wait_status(lambda s: f"{stream} stream silent for" in s.message)
        assert later.values["total published"] == silent.values["total published"]
        assert later.values["total pairs"] == silent.values["total pairs"]

        probe.set_streams(**{stream: True})
        probe.wait_outputs(5)
        recovered = probe.wait_ok()
        assert recovered.values[f"total {stream} silences"] == "1"
        assert float(recovered.values[f"{stream} seconds since last image"]) < 2.0

    for stream in ("thermal", "visible"):
        # One log line per silence and one on resuming.
        watchdog = log_lines(ros_graph, f"{stream} stream silent for")
        assert len(watchdog) == 1 and watchdog[0].startswith("[WARN]"), ros_graph.log("node")
        assert f"no image on {ros_graph.namespace}/{stream}/image" in watchdog[0]
        assert len(log_lines(ros_graph, f"{stream} stream resumed after")) == 1


def test_clock_jumps_back_under_sim_time_and_pairing_restarts(ros_graph, make_probe):
    start_node(ros_graph, use_sim_time=True)
    probe = make_probe(sim_time=True)  # /clock follows the image stamps, like a looping bag
    probe.set_streams(visible=True, thermal=True)
    probe.wait_outputs(5)

    for jumps in (1, 2):
        newest_ns = probe.jump_clock(-30.0)
        # Fused images carry the new, older stamps: pairing restarted on the new timeline.
        probe.wait_outputs(5, where=lambda output: output.stamp_ns < newest_ns - 20e9)
        reported = probe.wait_status(
            lambda s: int(s.values.get("total clock_jumps", 0)) >= jumps,
            what=f"total clock_jumps >= {jumps}")
        assert int(reported.values["total clock_jumps"]) <= 2 * jumps  # one per stream at most
        probe.wait_ok()

    jumped = log_lines(ros_graph, "clock jumped back by")
    assert jumped and jumped[0].startswith("[WARN]") and "synchroniser reset" in jumped[0]


def test_restarted_publisher_process_is_fused_again(ros_graph, make_probe):
    start_node(ros_graph)
    probe = make_probe()  # listens only; a traffic process plays the cameras
    camera_options = ("--rate", "10", "--count", "100000")
    publisher = ros_graph.traffic("publish", "publisher", *camera_options, timeout=120)
    probe.wait_outputs(5)
    probe.wait_ok()

    publisher.kill()  # no goodbye to the graph, as when a driver crashes
    publisher.wait(30)
    ros_graph.killed.append("publisher")
    killed_ns = time.time_ns()
    probe.wait_status(lambda s: s.level == WARN and "visible stream silent" in s.message
                      and "thermal stream silent" in s.message,
                      what="WARN with both streams silent")

    ros_graph.traffic("publish", "publisher_restarted", *camera_options, timeout=120)
    probe.wait_outputs(5, where=lambda output: output.stamp_ns > killed_ns)
    recovered = probe.wait_ok()
    assert recovered.values["total visible silences"] == "1"
    assert recovered.values["total thermal silences"] == "1"


def replace_file(path: Path, source: Path) -> None:
    """Replace ``path`` by a copy of ``source`` the way a deployment should (rename)."""
    staging = path.with_suffix(".staging")
    shutil.copyfile(source, staging)
    os.replace(staging, path)


def test_model_replaced_while_running_is_swapped_or_refused(ros_graph, make_probe, tmp_path):
    models = shipped_models()
    model = tmp_path / "model.safetensors"
    shutil.copyfile(models["lutfuse-mini"], model)
    start_node(ros_graph, artifact=str(model))
    probe = make_probe()
    probe.set_streams(visible=True, thermal=True)
    before = probe.wait_outputs(6)
    assert probe.wait_ok().hardware_id.startswith("lutfuse-mini on torch")

    # (a) The file is replaced by another model; ~/reload_model swaps it in.
    replace_file(model, models["lutfuse-mmlut"])
    swapped, message = probe.reload_model()
    assert swapped and "lutfuse-mmlut" in message, message
    after = probe.wait_outputs(6)[2:]  # the first ones may have been fused before the swap
    status = probe.wait_status(lambda s: s.hardware_id.startswith("lutfuse-mmlut on torch"),
                               what="hardware_id naming lutfuse-mmlut")
    assert status.values["total model swaps"] == "1"
    old_digests = {output.content: output.digest for output in before}
    changed = [output for output in after if output.content in old_digests]
    assert changed and all(output.digest != old_digests[output.content] for output in changed)

    # (b) A truncated file is refused with the reason; the running model keeps fusing.
    model.write_bytes(models["lutfuse-mini"].read_bytes()[:1000])
    swapped, message = probe.reload_model()
    assert not swapped and str(model) in message and "keeps running" in message, message
    probe.wait_outputs(5)
    status = probe.wait_status(lambda s: s.values.get("total model swaps refused") == "1")
    assert status.hardware_id.startswith("lutfuse-mmlut")

    # (c) Setting 'artifact' to a missing file is refused; the parameter keeps its value.
    missing = tmp_path / "missing.safetensors"
    successful, reason = probe.set_parameter("artifact", str(missing))
    assert not successful and "missing.safetensors" in reason, reason
    probe.wait_outputs(3)

    # (d) Setting 'artifact' to a valid model swaps it in at once.
    successful, reason = probe.set_parameter("artifact", "lutfuse-mini")
    assert successful, reason
    probe.wait_outputs(5)
    status = probe.wait_status(lambda s: s.hardware_id.startswith("lutfuse-mini on torch"),
                               what="hardware_id naming lutfuse-mini again")
    assert status.values["total model swaps"] == "2"
    assert status.values["total model swaps refused"] == "2"
    assert status.values["total failed"] == "0"  # no pair ever met a half-swapped model
    probe.wait_ok()
    assert len(log_lines(ros_graph, "refused, the current model keeps running")) == 2


def test_backend_failures_escalate_to_error_and_recover(ros_graph, make_probe, tmp_path):
    control = tmp_path / "fault"
    command = [sys.executable, str(Path(__file__).with_name("faulty_backend_node.py")),
               str(control), *ros_graph.ros_args(), "--params-file",
               str(REPO / "config" / "fuse.yaml"), "--params-file",
               str(ros_graph.write_params({**BASE, "artifact": "lutfuse-mini",
                                           "backend": "faulty",
                                           "diagnostics": {**BASE["diagnostics"],
                                                           "error_after_failures": 3}}))]
    ros_graph.start("node", command)
    ros_graph.wait_until_active()
    probe = make_probe()
    probe.set_streams(visible=True, thermal=True)
    probe.wait_outputs(5)
    probe.wait_ok()

    for fault, signature in (("raise", "injected backend fault"), ("nan", "NaN/inf")):
        control.write_text(fault)
        failing = probe.wait_status(
            lambda s: s.level == ERROR and "consecutive pairs failed" in s.message,
            what=f"ERROR for fault {fault}")
        assert signature in failing.message and int(failing.values["consecutive failures"]) >= 3
        if fault == "nan":
            # A model change is proven by a warm-up fuse first: NaN output is refused.
            successful, reason = probe.set_parameter("backend_threads", 2)
            assert not successful and "warm-up" in reason and "NaN/inf" in reason, reason
        control.unlink()
        probe.wait_outputs(5)
        recovered = probe.wait_ok()
        assert recovered.values["consecutive failures"] == "0"

    # The backend can be changed while running, too.
    successful, reason = probe.set_parameter("backend", "torch")
    assert successful, reason
    probe.wait_status(lambda s: s.hardware_id.startswith("lutfuse-mini on torch"),
                      what="hardware_id naming the torch backend")
    probe.wait_outputs(3)

    final = probe.wait_ok()
    assert final.values["total failure episodes (ERROR)"] == "2"
    failed = int(final.values["total failed"])
    assert failed >= 6
    # Throttled: far fewer log lines than failures, each kind still reported.
    dropped = log_lines(ros_graph, "dropped pair at visible stamp")
    assert 2 <= len(dropped) < failed, ros_graph.log("node")
    assert log_lines(ros_graph, "fusion failing: 3 consecutive pairs failed")[0].startswith(
        "[ERROR]")
    assert len(log_lines(ros_graph, "fusion recovered after")) >= 1

"""The shipped Fast DDS profile is read and accepted by both Fast DDS generations.

A child process applies the profile as the node does (:func:`apply_transport_profile`, which
detects the generation), starts a participant and publishes once, and reports the shared-memory
segments it mapped. The profile is in effect when the participant's segment has the profile's
32 MiB (the default is 512 KiB), and accepted when the parser logs no XML error. A deliberately
broken file must produce the parser's error in the same setup, so that the absence of errors
means something. It runs with this environment's Python (Kilted wheels here) and with a Jazzy
(Fast DDS 2.x) environment where one exists: ``$LUTFUSE_JAZZY_PYTHON`` or ``.venv-jazzy``
in the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lutfuse_ros.ros.transport import USER_TRANSPORT_VARIABLES

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
PROFILE_SEGMENT_BYTES = 32 * 1024 * 1024
XML_ERRORS = ("XMLPARSER Error", "Problem loading XML", "Error parsing")

CHILD = r"""
import json, os, sys
from lutfuse_ros.ros.transport import apply_transport_profile
decision = apply_transport_profile() if sys.argv[1] == "apply" else None
if sys.argv[1] == "broken":
    from lutfuse_ros.ros.fastdds_version import detect_fastdds
    from lutfuse_ros.ros.transport import profile_variables
    for variable in profile_variables(detect_fastdds()):
        os.environ[variable] = sys.argv[2]
import rclpy
from std_msgs.msg import String
from lutfuse_ros.ros.fastdds_version import detect_fastdds
rclpy.init()
node = rclpy.create_node("lutfuse_profile_probe")
node.create_publisher(String, "lutfuse_profile_probe", 10).publish(String(data="x"))
segments = {}
for line in open("/proc/self/maps"):
    path = line.split()[-1]
    name = os.path.basename(path)
    if path.startswith("/dev/shm/") and name.startswith(("fastdds_", "fastrtps_")) \
            and "port" not in name:
        segments[path] = os.path.getsize(path)
print("RESULT " + json.dumps({"variables": decision and list(decision.variables),
                              "generation": detect_fastdds().major, "segments": segments}))
node.destroy_node()
rclpy.shutdown()
"""


def interpreters() -> list[tuple[str, str]]:
    """(label, python) of every ROS 2 environment to check."""
    found = [("this environment", sys.executable)]
    jazzy = os.environ.get("LUTFUSE_JAZZY_PYTHON") or str(REPO / ".venv-jazzy" / "bin" / "python")
    # (venv interpreters are links to one binary: compare the environments, not the files)
    if Path(jazzy).is_file() and Path(jazzy).absolute().parents[1] != Path(sys.prefix).absolute():
        found.append(("jazzy", jazzy))
    return found


#: Set by the ROS wheels' start-up hook (library path of *this* environment): another
#: environment must set its own.
WHEEL_BOOTSTRAP_VARIABLES = ("LD_LIBRARY_PATH", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")


def run_probe(python: str, mode: str, *extra: str) -> tuple[dict, str]:
    foreign = Path(python).absolute().parents[1] != Path(sys.prefix).absolute()
    env = {key: value for key, value in os.environ.items()
           if key not in USER_TRANSPORT_VARIABLES and key != "RMW_IMPLEMENTATION"
           and not (foreign and key in WHEEL_BOOTSTRAP_VARIABLES)}
    env.update(ROS_DOMAIN_ID=str(1 + (os.getpid() * 3) % 100),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    done = subprocess.run([python, "-c", CHILD, mode, *extra], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), output


@pytest.mark.parametrize("label, python", interpreters())
def test_shipped_profile_is_read_and_accepted(label, python, tmp_path):
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    applied, output = run_probe(python, "apply")
    expected = {2: "FASTRTPS_DEFAULT_PROFILES_FILE", 3: "FASTDDS_DEFAULT_PROFILES_FILE"}
    assert applied["variables"] == [expected[applied["generation"]]], (label, applied)
    assert not [error for error in XML_ERRORS if error in output], (label, output)
    assert max(applied["segments"].values()) >= PROFILE_SEGMENT_BYTES, (label, applied)
    # Controls: without the profile the segment is Fast DDS's small default, and a broken
    # profile in the same variable makes the parser complain.
    default, _ = run_probe(python, "none")
    assert max(default["segments"].values()) < PROFILE_SEGMENT_BYTES, (label, default)
    broken = tmp_path / "broken.xml"
    broken.write_text("<dds xmlns='http://www.eprosima.com'><profiles><no_such_tag/>"
                      "</profiles></dds>")
    _, output = run_probe(python, "broken", str(broken))
    assert any(error in output for error in XML_ERRORS), (label, output)
    print(f"{label}: Fast DDS {applied['generation']}.x read {applied['variables'][0]}; "
          f"segment {max(applied['segments'].values())} bytes")

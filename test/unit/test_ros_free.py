"""The ROS-free half of the package runs where no ROS message package can be imported.

A subprocess makes every ROS 2 Python package unimportable (a meta-path finder that refuses
them), then decodes the committed demo bags through the training datasets and the bag reader,
and trains a few mini-model steps on them: what a user without ROS does with recordings. The
node's frame path below its message layer (``lutfuse_ros.stream``) runs there too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BAGS = REPO / "test" / "resources" / "bags"

BLOCK_ROS = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = ("rclpy", "sensor_msgs", "std_msgs", "builtin_interfaces", "rosidl_runtime_py",
               "rosidl_parser", "rcl_interfaces", "lifecycle_msgs", "diagnostic_msgs",
               "std_srvs", "cv_bridge", "rpyutils")

    class NoRos(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: this test runs without ROS")
            return None

    sys.meta_path.insert(0, NoRos())
""")


def run_without_ros(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_ROS + textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_blocker_really_blocks_ros():
    result = run_without_ros("import sensor_msgs.msg\n")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_training_reads_bags_and_trains_without_ros(tmp_path):
    code = f"""
        import sys
        import numpy as np
        from lutfuse_ros.bag.reader import ImageBagReader, decode_thermal, decode_visible_bgr
        from lutfuse_ros.training.config import parse_config
        from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource
        from lutfuse_ros.training.engine import train

        for storage in ("sqlite3", "mcap"):
            source = RosbagSource({str(BAGS)!r} + "/demo_" + storage, "/visible/image",
                                  "/thermal/image")
            frames = list(source.iterate())
            assert len(frames) == 40, len(frames)
            key, visible, thermal = frames[0]
            assert visible.shape == (48, 64, 3) and visible.dtype == np.uint8
            assert thermal.shape == (48, 64) and thermal.dtype == np.uint16
        with ImageBagReader({str(BAGS)!r} + "/demo_mcap") as reader:
            message = next(reader.messages(reader.resolve_topics()))
            assert decode_visible_bgr(message.cdr).shape == (48, 64, 3)
        config = parse_config('''
        stage: mini
        name: no-ros-mini
        output: {tmp_path}/mini.safetensors
        run_dir: {tmp_path}/run
        data:
          sources: [{{kind: rosbag, path: {BAGS}/demo_sqlite3, visible_topic: /visible/image,
                      thermal_topic: /thermal/image}}]
          crop_size: 32
          crops_per_epoch: 8
        train: {{epochs: 1, batch_size: 4, lr: 1.0e-3}}
        teacher: {{kind: classical, rule: sum_max_blend, max_weight: 0.5, sum_gain: 1.0}}
        mini: {{init: analytic_max, cache_teacher: false, frame_level: true}}
        loss: {{gamma: 0.0, delta: 0.0, lam: 0.0, refresh: false, teacher_l1: 1.0}}
        ''')
        result = train(config, progress=False)
        assert result.steps == 2, result.steps
        leaked = sorted(name for name in sys.modules
                        if name.split(".")[0] in ("rclpy", "sensor_msgs", "std_msgs"))
        assert not leaked, leaked
        print("ok", result.artifact)
    """
    result = run_without_ros(code)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ok" in result.stdout and (tmp_path / "mini.safetensors").is_file()


def test_the_node_frame_path_runs_without_ros():
    """Camera frames -> pairing -> worker -> fusion step -> fused frames: no ROS import."""
    code = """
        import sys, threading
        import numpy as np
        from lutfuse_ros.image_codec import encode_image
        from lutfuse_ros.ros.model_loading import load_step
        from lutfuse_ros.settings.node_settings import parse_settings
        from lutfuse_ros.stream.camera_frame import CameraFrame
        from lutfuse_ros.stream.fusion_stream import FusionStream
        from lutfuse_ros.stream.step_slot import StepSlot

        settings = parse_settings({"artifact": "lutfuse-mini", "backend": "torch"},
                                  fill_defaults=True)
        slot = StepSlot(load_step(settings))
        delivered, failures, done = [], [], threading.Event()

        def deliver(pair):
            delivered.append(pair)
            done.set()

        stream = FusionStream(settings.sync, 0.0, slot, deliver=deliver,
                              on_failure=lambda pair, error: failures.append(error),
                              wants_output=lambda: True, count=lambda event: None)
        stream.start()
        rng = np.random.default_rng(0)
        visible = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        thermal = rng.integers(0, 65536, (48, 64), dtype=np.uint16)
        stream.add(CameraFrame("visible", 10**9, "camera",
                               compressed=encode_image(visible, "png")))
        stream.add(CameraFrame.from_array("thermal", thermal, "mono16", 10**9))
        assert done.wait(60) and stream.stop(10), failures
        fused = delivered[0].fused
        assert fused.array.shape == (48, 64, 3) and fused.stamp_ns == 10**9
        assert np.array_equal(fused.array, slot.step.pipeline.fuse(visible, thermal))
        leaked = sorted(name for name in sys.modules
                        if name.split(".")[0] in ("rclpy", "sensor_msgs", "std_msgs"))
        assert not leaked, leaked
        print("ok")
    """
    result = run_without_ros(code)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ok" in result.stdout

"""Swapping the node's model while it runs.

Loading with a warm-up fuse, refusal with a reason, the atomic slot, and the node's parameter
and ``~/reload_model`` paths (in process).
"""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from lutfuse_ros.artifacts import shipped_models
from lutfuse_ros.errors import ConfigError
from lutfuse_ros.ros.model_loading import describe_model, load_step, model_settings, warm_up_pair
from lutfuse_ros.settings.node_settings import parse_settings
from lutfuse_ros.stream.camera_frame import CameraFrame
from lutfuse_ros.stream.step_slot import StepSlot


def settings_for(artifact: str, **values):
    return parse_settings({"artifact": artifact, "backend": "torch", "backend_threads": 1,
                           **values}, fill_defaults=True)


def test_load_step_proves_the_model_with_a_warm_up_fuse():
    step = load_step(settings_for("lutfuse-mmlut"))
    assert describe_model(step).startswith("lutfuse-mmlut (mm_lut, ")
    visible, thermal = warm_up_pair(settings_for("lutfuse-mini"))
    fused = step.fuse(visible, thermal, lambda: 0)
    assert fused.size[::-1] == (48, 64)
    step.pipeline.close()


def test_warm_up_pair_fits_the_crop():
    settings = settings_for("lutfuse-mini", **{"alignment.crop": [30, 20, 100, 80]})
    visible, thermal = warm_up_pair(settings)
    assert visible.array.shape[:2] == (100, 130) == thermal.array.shape[:2]
    step = load_step(settings)
    assert step.fuse(visible, thermal, lambda: 0).size[0] == 100
    step.pipeline.close()


@pytest.mark.parametrize("content, fragment", [
    (None, "not found"),
    (b"\x00" * 7, "model.safetensors"),
])
def test_missing_or_corrupt_file_is_refused_naming_the_parameter(tmp_path, content, fragment):
    path = tmp_path / "model.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_step(settings_for(str(path)))
    assert "parameter 'artifact'" in str(caught.value)


def test_truncated_copy_of_a_real_model_is_refused(tmp_path):
    data = shipped_models()["lutfuse-mini"].read_bytes()
    path = tmp_path / "model.safetensors"
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ConfigError, match="parameter 'artifact'"):
        load_step(settings_for(str(path)))


def test_failed_warm_up_refuses_the_model_with_the_pipeline_error():
    # The last pair the node fused is the warm-up sample; a model that cannot fuse it (here:
    # the sample's sizes differ and no alignment mode is set) is refused.
    visible = CameraFrame.from_array("visible", np.zeros((48, 64, 3), np.uint8), "bgr8")
    thermal = CameraFrame.from_array("thermal", np.zeros((24, 32), np.uint8), "mono8")
    with pytest.raises(ConfigError, match="warm-up fuse with lutfuse-mini .* failed"):
        load_step(settings_for("lutfuse-mini"), (visible, thermal))


def test_model_settings_take_only_the_model_fields():
    current = settings_for("lutfuse-mini", **{"sync.slop": 0.01})
    candidate = settings_for("lutfuse-mmlut", **{"sync.slop": 0.05, "backend_threads": 2})
    merged = model_settings(current, candidate)
    assert merged.artifact == "lutfuse-mmlut"
    assert merged.backend_options == {"precision": "auto", "threads": 2}
    assert merged.sync.slop == 0.01


def test_slot_swap_is_immediate_and_retires_the_old_step_after_the_pair_in_progress():
    first, second = load_step(settings_for("lutfuse-mini")), load_step(
        settings_for("lutfuse-mmlut"))
    slot = StepSlot(first)
    in_use, release = threading.Event(), threading.Event()
    seen, retired = [], []

    def worker() -> None:
        with slot.use() as step:
            in_use.set()
            release.wait(10)
            seen.append(step)

    thread = threading.Thread(target=worker)
    thread.start()
    assert in_use.wait(10)
    # The swap returns at once: the next pair gets the new step, the pair in progress
    # keeps the old one, which is retired only when that pair is done.
    assert slot.swap(second, retire=retired.append) is first
    assert slot.step is second and retired == []
    with slot.use() as step:
        assert step is second
    release.set()
    thread.join(10)
    assert seen == [first] and retired == [first]
    # A step no pair uses is retired immediately.
    assert slot.swap(first, retire=retired.append) is second and retired == [first, second]
    first.pipeline.close()
    second.pipeline.close()


def test_slot_retires_a_backend_only_when_no_step_sharing_it_is_in_use():
    from lutfuse_ros.ros.live_params import restep

    settings = settings_for("lutfuse-mini")
    first, other = load_step(settings), load_step(settings_for("lutfuse-mmlut"))
    slot = StepSlot(first)
    in_use, release, retired = threading.Event(), threading.Event(), []

    def worker() -> None:
        with slot.use():
            in_use.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    assert in_use.wait(10)
    shared = restep(first, settings)  # a live change: same backend, never retired
    assert slot.swap(shared, retire=retired.append) is first and retired == []
    # A model swap right after it: the old backend is still fusing the pair in progress.
    assert slot.swap(other, retire=retired.append) is shared and retired == []
    release.set()
    thread.join(10)
    assert retired == [shared]
    first.pipeline.close()
    other.pipeline.close()


@pytest.fixture
def configured_node():
    """A real FusionNode in its own context, configured (not active), lutfuse-mini on torch."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.signals import SignalHandlerOptions

    from lutfuse_ros.ros.node import FusionNode

    context = rclpy.Context()
    rclpy.init(context=context, args=["test", "--ros-args", "-p", "artifact:=lutfuse-mini",
                                      "-p", "backend:=torch", "-p", "backend_threads:=1"],
               signal_handler_options=SignalHandlerOptions.NO)
    node = FusionNode(context=context)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    try:
        yield node
    finally:
        node.release()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def current_model(node) -> str:
    return node._slot.step.pipeline.artifact.name


def test_node_swaps_on_a_valid_artifact_parameter_and_refuses_a_missing_one(configured_node,
                                                                            tmp_path):
    from rclpy.parameter import Parameter

    node = configured_node
    missing = str(tmp_path / "missing.safetensors")
    result = node.set_parameters([Parameter("artifact", value=missing)])[0]
    assert not result.successful and "missing.safetensors" in result.reason
    assert node.get_parameter("artifact").value == "lutfuse-mini"
    assert current_model(node) == "lutfuse-mini"

    result = node.set_parameters([Parameter("artifact", value="lutfuse-mmlut")])[0]
    assert result.successful, result.reason
    assert current_model(node) == "lutfuse-mmlut" and node.settings.artifact == "lutfuse-mmlut"
    # Live parameters apply at once, validated like at configure; deferred ones wait.
    result = node.set_parameters([Parameter("sync.slop", value=0.04)])[0]
    assert result.successful and node.settings.sync.slop == 0.04
    result = node.set_parameters([Parameter("sync.clock_jump_threshold", value=0.03)])[0]
    assert not result.successful and "'sync.clock_jump_threshold'" in result.reason
    assert node.settings.sync.clock_jump_threshold == 1.0
    result = node.set_parameters([Parameter("qos.input", value="reliable")])[0]
    assert result.successful and node.settings.qos.input != "reliable"
    backend = node._slot.step.pipeline.backend
    result = node.set_parameters([Parameter("output.encoding", value="mono8")])[0]
    assert result.successful and node._slot.step.output.encoding == "mono8"
    assert node._slot.step.pipeline.backend is backend  # no model reload
    result = node.set_parameters([Parameter("output.compressed", value="png")])[0]
    assert result.successful and node._slot.step.compresses
    result = node.set_parameters([Parameter("alignment.homography", value=[0.0] * 9)])[0]
    assert not result.successful and "'alignment.homography'" in result.reason
    assert node._slot.step.pipeline.config.alignment.mode == "none"


def test_reload_service_reads_the_replaced_file_or_keeps_the_old_model(configured_node,
                                                                       tmp_path):
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    node = configured_node
    models = shipped_models()
    path = tmp_path / "model.safetensors"
    shutil.copyfile(models["lutfuse-mini"], path)
    assert node.set_parameters([Parameter("artifact", value=str(path))])[0].successful

    shutil.copyfile(models["lutfuse-mmlut"], path)
    response = node._on_reload_model(Trigger.Request(), Trigger.Response())
    assert response.success and "lutfuse-mmlut" in response.message
    assert current_model(node) == "lutfuse-mmlut"

    path.write_bytes(path.read_bytes()[:500])
    response = node._on_reload_model(Trigger.Request(), Trigger.Response())
    assert not response.success and "keeps running" in response.message
    assert str(path) in response.message
    assert current_model(node) == "lutfuse-mmlut"

    node.release()
    response = node._on_reload_model(Trigger.Request(), Trigger.Response())
    assert not response.success and "not configured" in response.message

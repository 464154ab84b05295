"""Parameters of the fusion node.

One table, defaults from config/fuse.yaml only, validation that names the parameter,
descriptors with ranges, and the shipped copies in sync.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.pipeline import PipelineConfig
from lutfuse_ros.package_files import PACKAGED_CONFIG_FILES, config_file
from lutfuse_ros.ros import params
from lutfuse_ros.settings import docs_table
from lutfuse_ros.settings.node_settings import load_sync_settings, parse_sync_settings
from lutfuse_ros.training.data_config import SourceConfig
from lutfuse_ros.settings.params_file import default_values, read_params_file
from lutfuse_ros.settings.schema import PARAMETERS, SPECS, check_value
from lutfuse_ros.settings.node_settings import parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_each_config_file_exists_once_in_the_source_tree():
    # config/ is the only copy; the build copies it into the package (test_packaging checks
    # the wheel), and a checkout reads config/ itself.
    for name in PACKAGED_CONFIG_FILES:
        copies = [path for path in REPO.rglob(name)
                  if not {".git", "build", "install"} & set(path.relative_to(REPO).parts)
                  and not path.relative_to(REPO).parts[0].startswith(".venv")]
        assert copies == [REPO / "config" / name], copies
        assert config_file(name) == REPO / "config" / name


def test_defaults_cover_exactly_the_parameter_table_with_valid_values():
    defaults = default_values()
    assert set(defaults) == set(SPECS)
    assert len(PARAMETERS) == len(SPECS)  # no name declared twice
    for name, value in defaults.items():
        assert check_value(SPECS[name], value) is None
    # The installed copy and the source read the same.
    assert read_params_file(REPO / "config" / "fuse.yaml") == defaults


def test_defaults_parse_into_settings_matching_the_pipeline_defaults():
    settings = parse_settings(default_values())
    assert settings.pipeline == PipelineConfig()
    assert settings.qos.input == "auto" and settings.qos.output == "reliable"
    assert settings.output.encoding == "bgr8" and settings.output.stamp_source == "visible"
    assert settings.backend_options == {"precision": "auto"}
    # The package's own synchroniser and converter are the defaults (what CI runs).
    assert settings.sync.use_message_filters is False and settings.use_cv_bridge is False


def test_defaults_use_the_own_synchroniser_and_converter_where_the_libraries_exist(
        monkeypatch):
    import sys
    import types

    from message_filters_stand_in import stand_in_message_filters

    from lutfuse_ros.ros.conversions import ImageConverter
    from lutfuse_ros.stream.pairing import ApproximateTimePairer, make_synchroniser

    class Bridge:   # importable, so only the defaults keep it out
        def imgmsg_to_cv2(self, msg, desired_encoding):
            raise AssertionError("cv_bridge used although not asked for")

    monkeypatch.setitem(sys.modules, "message_filters", stand_in_message_filters())
    monkeypatch.setitem(sys.modules, "cv_bridge", types.SimpleNamespace(CvBridge=Bridge))
    settings = parse_settings(default_values())
    sync = settings.sync
    pairer = make_synchroniser(sync.slop, sync.queue_size,
                               prefer_message_filters=sync.use_message_filters)
    assert isinstance(pairer, ApproximateTimePairer)
    assert not ImageConverter(prefer_cv_bridge=settings.use_cv_bridge).uses_cv_bridge
    assert not ImageConverter().uses_cv_bridge
    # Opting in still selects the libraries.
    assert not isinstance(make_synchroniser(0.01, 5, prefer_message_filters=True),
                          ApproximateTimePairer)
    assert ImageConverter(prefer_cv_bridge=True).uses_cv_bridge


@pytest.mark.parametrize("name, value, fragment", [
    ("sync.slop", -0.1, "out of range"),
    ("sync.clock_jump_threshold", 0.0, "out of range"),
    ("diagnostics.stream_timeout", -1.0, "out of range"),
    ("diagnostics.error_after_failures", 0, "out of range"),
    ("sync.slop", float("nan"), "out of range"),
    ("sync.queue_size", 2.5, "must be of type integer"),
    ("sync.queue_size", True, "must be of type integer"),
    ("autostart", 1, "must be of type bool"),
    ("output.encoding", "bgr16", "is not one of bgr8, rgb8, mono8"),
    ("qos.input", "best_effort", "is not one of"),
    ("alignment.homography", [1.0, 0.0], "exactly 9 values"),
    ("alignment.homography", [1, 0, 0, 0, 1, 0, 0, 0, 1], "must be of type double_array"),
    ("thermal.fixed_range", [0.0, 70000.0], "out of range"),
    ("alignment.crop", [0, 0, -1, 4], "out of range"),
    ("backend", "cuda-magic", "not a registered backend"),
    ("artifact", " ", "must not be empty"),
    ("backend_options", "[1, 2]", "mapping of names to scalars"),
    ("backend_options", "{a: [1]}", "mapping of names to scalars"),
])
def test_invalid_value_fails_naming_the_parameter(name, value, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        parse_settings({name: value}, fill_defaults=True)
    assert f"'{name}'" in str(caught.value)


@pytest.mark.parametrize("values, names", [
    ({"thermal.low_percentile": 99.0, "thermal.high_percentile": 1.0},
     ("thermal.low_percentile", "thermal.high_percentile")),
    ({"thermal.fixed_range": [100.0, 100.0]}, ("thermal.fixed_range",)),
    ({"alignment.mode": "homography", "alignment.homography": [0.0] * 9},
     ("alignment.homography",)),
    ({"backend_threads": 2, "backend_options": "{threads: 3}"},
     ("backend_threads", "backend_options")),
    ({"sync.slop": 0.5, "sync.clock_jump_threshold": 0.5},
     ("sync.clock_jump_threshold", "sync.slop")),
])
def test_inconsistent_combinations_fail_naming_the_parameters(values, names):
    with pytest.raises(ConfigError) as caught:
        parse_settings(values, fill_defaults=True)
    for name in names:
        assert f"'{name}'" in str(caught.value)


def test_unknown_or_missing_parameters_are_rejected():
    with pytest.raises(ConfigError, match="unknown parameter.*sync.slope"):
        parse_settings({"sync.slope": 0.1}, fill_defaults=True)
    with pytest.raises(ConfigError, match="missing parameter"):
        parse_settings({"sync.slop": 0.1})


def test_params_file_overrides_are_parsed_like_ros_does(tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"sync": {"slop": 0.04}, "output": {"encoding": "mono8"}}},
        "/front/fusion_node": {"ros__parameters": {"sync": {"slop": 0.05}}}}))
    values = read_params_file(path, "/front/fusion_node")
    assert values == {"sync.slop": 0.05, "output.encoding": "mono8"}
    settings = parse_settings(values, fill_defaults=True)
    assert settings.sync.slop == 0.05
    assert settings.pipeline.output == "mono"
    assert parse_settings({"alignment.crop": [1, 2, 30, 40]}, fill_defaults=True
                          ).pipeline.alignment.crop == (1, 2, 30, 40)
    with pytest.raises(ConfigError, match="no '/\\*\\*: ros__parameters' section"):
        empty = tmp_path / "empty.yaml"
        empty.write_text("foo: 1\n")
        read_params_file(empty)


def test_descriptors_carry_type_range_and_choices():
    from rcl_interfaces.msg import ParameterType

    slop = params.make_descriptor(SPECS["sync.slop"])
    assert slop.type == ParameterType.PARAMETER_DOUBLE
    assert (slop.floating_point_range[0].from_value, slop.floating_point_range[0].to_value) \
        == (0.0, 1.0)
    queue = params.make_descriptor(SPECS["sync.queue_size"])
    assert (queue.integer_range[0].from_value, queue.integer_range[0].to_value) == (1, 100)
    encoding = params.make_descriptor(SPECS["output.encoding"])
    assert "bgr8, rgb8, mono8" in encoding.additional_constraints
    assert all(params.make_descriptor(spec).description for spec in PARAMETERS)


def test_declaring_on_a_real_node_defers_rejected_overrides_to_configure():
    rclpy = pytest.importorskip("rclpy")
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(context=context, args=["test", "--ros-args", "-p", "sync.slop:=3.0",
                                      "-p", "output.encoding:=rgb8"],
               signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node("fusion_node", context=context)
        problems = params.declare_node_parameters(node)
        assert set(problems) == {"sync.slop"}
        assert "'sync.slop'" in problems["sync.slop"] and "range [0.0, 1.0]" in \
            problems["sync.slop"]
        values = params.node_parameter_values(node)
        assert values["sync.slop"] == default_values()["sync.slop"]  # default kept
        assert values["output.encoding"] == "rgb8"                    # valid override applied
        assert isinstance(values["alignment.homography"], list)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_node_subcommand_requires_ros_arguments_after_ros_args():
    from lutfuse_ros.cli import node_cmd

    with pytest.raises(ConfigError, match="must follow --ros-args"):
        node_cmd.run(argparse.Namespace(extra_args=["--params-file", "x.yaml"],
                                        no_fastdds_profile=False))


def test_docs_list_every_parameter():
    docs = (REPO / "docs" / "ros_node.md").read_text()
    missing = [spec.name for spec in PARAMETERS if f"`{spec.name}`" not in docs]
    assert not missing, f"docs/ros_node.md lacks {missing}"


def test_docs_parameter_table_is_generated_from_the_schema_and_defaults():
    docs = (REPO / "docs" / "ros_node.md").read_text()
    assert docs_table.render(docs) == docs, (
        "docs/ros_node.md is out of date: python -m lutfuse_ros.settings.docs_table "
        "docs/ros_node.md")
    table = docs_table.parameter_table()
    defaults = default_values()
    for spec in PARAMETERS:  # one row per parameter, with its default from fuse.yaml
        row = next(line for line in table.splitlines() if line.startswith(f"| `{spec.name}` |"))
        shown = row.split(" | ")[2].strip("`")
        value = defaults[spec.name]
        assert shown == (value if isinstance(value, str) and value else json.dumps(value))


def test_replay_and_training_pair_with_the_node_sync_settings():
    node = parse_settings(default_values()).sync
    assert load_sync_settings() == node == parse_sync_settings()
    source = SourceConfig(kind="rosbag", path="bag", visible_topic="/v", thermal_topic="/t")
    assert source.sync_settings() == node
    tuned = SourceConfig(kind="rosbag", path="bag", visible_topic="/v", thermal_topic="/t",
                         slop=0.01, queue_size=30)
    assert (tuned.sync_settings().slop, tuned.sync_settings().queue_size) == (0.01, 30)
    # The node's messages, wherever the value was written.
    with pytest.raises(ConfigError, match="'sync.slop'"):
        SourceConfig(kind="rosbag", path="bag", visible_topic="/v", thermal_topic="/t",
                     slop=-1.0)
    with pytest.raises(ConfigError, match="'sync.clock_jump_threshold'"):
        load_sync_settings(None, ["sync.slop:=0.5", "sync.clock_jump_threshold:=0.4"])

"""Property-based tests: bad bags give a clear LutfuseError, never a crash, hang or wrong frame.

The consumers are the three readers of recordings: :class:`~lutfuse_ros.bag.reader.
ImageBagReader` with :func:`~lutfuse_ros.bag.reader.decode_image` (``lutfuse replay``), the
replay's scan :func:`~lutfuse_ros.bag.replay.scan_bag` (topics, stamps, predicted pairs; no
node needed), and the training source :class:`~lutfuse_ros.training.datasets.rosbag_dataset.
RosbagSource`. Bags are real rosbag2 files (sqlite3 and mcap) written here with the package's
writer or ``rosbags``; hypothesis truncates them, names missing topics, scrambles header stamps,
leaves topics empty and puts other message types or garbage on the image topics.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lutfuse_ros.bag.common import (COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, NS_PER_S, BagError,
                                    ros2_typestore)
from lutfuse_ros.bag.reader import ImageBagReader, decode_image
from lutfuse_ros.bag.replay import ReplayOptions, scan_bag
from lutfuse_ros.bag.writer import ImageBagWriter, image_cdr
from lutfuse_ros.errors import InputError, LutfuseError
from lutfuse_ros.settings.node_settings import parse_sync_settings
from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource

VISIBLE, THERMAL = "/visible/image", "/thermal/image"
START_NS = 1_700_000_000 * NS_PER_S
PERIOD_NS = NS_PER_S // 10
STORAGES = st.sampled_from(("sqlite3", "mcap"))
FUZZ = settings(max_examples=30, deadline=timedelta(seconds=5),
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


def visible_frame(index: int) -> np.ndarray:
    """A 4x6 BGR frame whose every byte says which frame it is."""
    return np.full((4, 6, 3), 10 + index, np.uint8)


def thermal_frame(index: int) -> np.ndarray:
    return np.full((4, 6), 1000 + 7 * index, np.uint16)


def write_pairs(path: Path, storage: str, visible_stamps: list[int], thermal_stamps: list[int]
                ) -> Path:
    """A bag whose i-th visible/thermal message carries frame i and stamp ``*_stamps[i]``.

    Bag (receive) times increase in the order written.
    """
    with ImageBagWriter(path, storage) as writer:
        writer.add_image_topic(VISIBLE)
        writer.add_image_topic(THERMAL)
        log_ns = START_NS
        for index in range(max(len(visible_stamps), len(thermal_stamps))):
            for topic, stamps, frame, encoding in (
                    (VISIBLE, visible_stamps, visible_frame, "bgr8"),
                    (THERMAL, thermal_stamps, thermal_frame, "mono16")):
                if index < len(stamps):
                    log_ns += 1000
                    writer.write_image(topic, frame(index), encoding, stamps[index], "cam",
                                       log_ns=log_ns)
    return path


def fresh_dir(tmp_path: Path) -> Path:
    """A new folder per hypothesis example (the function-scoped tmp_path is shared)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


@pytest.fixture(scope="module")
def good_bags(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bags")
    stamps = [START_NS + i * PERIOD_NS for i in range(8)]
    return {storage: write_pairs(folder / storage, storage, stamps, stamps)
            for storage in ("sqlite3", "mcap")}


def read_with_replay_reader(bag: Path, **topics) -> list[tuple[str, int, np.ndarray]]:
    """``(topic, stamp, array)`` of every message, read and decoded as ``lutfuse replay``."""
    with ImageBagReader(bag) as reader:
        chosen = reader.resolve_topics(**topics)
        return [(m.topic, m.stamp_ns, decode_image(m.cdr).array)
                for m in reader.messages(chosen)]


def read_with_training_source(bag: Path, visible: str = VISIBLE, thermal: str = THERMAL,
                              slop: float = 0.02) -> list[tuple[np.ndarray, np.ndarray]]:
    source = RosbagSource(bag, visible, thermal, sync=parse_sync_settings({"sync.slop": slop}))
    return [source.read(key) for key in source.keys()]


def frame_index(topic: str, array: np.ndarray) -> int:
    """Which frame an image is (inverse of visible_frame / thermal_frame)."""
    value = int(array.reshape(-1)[0])
    index = value - 10 if topic == VISIBLE else (value - 1000) // 7
    expected = visible_frame(index) if topic == VISIBLE else thermal_frame(index)
    np.testing.assert_array_equal(array.reshape(expected.shape), expected)
    return index


def refused_naming(error: LutfuseError, bag: Path) -> None:
    event(f"refused: {type(error).__name__}")
    assert str(bag) in str(error), f"error does not name the bag: {error}"


@FUZZ
@given(storage=STORAGES, fraction=st.floats(0.0, 1.0, exclude_max=True),
       without_metadata=st.booleans())
def test_truncated_storage_is_refused_or_read_correctly(good_bags, tmp_path, storage, fraction,
                                                        without_metadata):
    """A recording cut short (disk full, power loss) is refused by name or read correctly.

    Every reader refuses it by name, or what it reads is exactly the frames that were written.
    """
    bag = shutil.copytree(good_bags[storage], fresh_dir(tmp_path) / storage)
    (storage_file,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
    raw = storage_file.read_bytes()
    storage_file.write_bytes(raw[:int(len(raw) * fraction)])
    if without_metadata:  # the recorder died before writing metadata.yaml
        (bag / "metadata.yaml").unlink()
        bag = storage_file
    try:
        for topic, _, array in read_with_replay_reader(bag):
            frame_index(topic, array)
        event("replay reader: read")
    except BagError as error:
        refused_naming(error, bag)
    try:
        for visible, thermal in read_with_training_source(bag):
            assert frame_index(VISIBLE, visible) == frame_index(THERMAL, thermal)
        event("training source: read")
    except InputError as error:
        refused_naming(error, bag)
    try:
        scan_bag(ReplayOptions(bag=bag, progress=False))
    except BagError as error:
        refused_naming(error, bag)


@FUZZ
@given(storage=STORAGES, topic=st.text(max_size=20), role=st.sampled_from(("visible", "thermal")))
def test_missing_topics_are_named(good_bags, storage, topic, role):
    bag = good_bags[storage]
    if topic in ("", VISIBLE, THERMAL):
        return  # empty means "find it"; existing topics are not missing
    with pytest.raises(BagError, match=rf"no topic {re.escape(topic)}"):
        read_with_replay_reader(bag, **{role: topic})
    names = (topic, THERMAL) if role == "visible" else (VISIBLE, topic)
    # Training reads through the same reader: the same error.
    with pytest.raises(BagError, match=rf"no topic {re.escape(topic)}"):
        read_with_training_source(bag, *names)
    options = ReplayOptions(bag=bag, progress=False, **{f"{role}_topic": topic})
    with pytest.raises(BagError, match="no topic"):
        scan_bag(options)


stamp_lists = st.lists(st.integers(0, 30), min_size=1, max_size=10).map(
    lambda steps: [START_NS + step * PERIOD_NS // 2 for step in steps])


@FUZZ
@given(storage=STORAGES, visible_stamps=stamp_lists, thermal_stamps=stamp_lists)
def test_unsorted_stamps_are_counted_sorted_and_never_mispaired(
        tmp_path, storage, visible_stamps, thermal_stamps):
    bag = write_pairs(fresh_dir(tmp_path) / "bag", storage, visible_stamps, thermal_stamps)
    streams = {VISIBLE: visible_stamps, THERMAL: thermal_stamps}
    with ImageBagReader(bag) as reader:
        in_log_order = list(reader.messages((VISIBLE, THERMAL)))
        issues = reader.order_issues
        stamp_sorted = list(reader.messages((VISIBLE, THERMAL), order="stamp",
                                            reorder_window=64))
    for topic, stamps in streams.items():
        assert [m.stamp_ns for m in in_log_order if m.topic == topic] == stamps
        backwards = sum(stamp < max(stamps[:i]) for i, stamp in enumerate(stamps) if i)
        assert issues[topic].backwards == backwards
        assert [m.stamp_ns for m in stamp_sorted if m.topic == topic] == sorted(stamps)
    if any(issue.backwards for issue in issues.values()):
        event("backwards stamps")
        with ImageBagReader(bag) as reader, pytest.raises(BagError, match="go backwards"):
            list(reader.messages((VISIBLE, THERMAL), strict=True))
    # Training pairs: each visible frame with a thermal frame whose stamp is within the slop.
    slop = 0.02
    try:
        frames = read_with_training_source(bag, slop=slop)
    except InputError as error:
        assert "produced no frames" in str(error)
        frames = []
    for visible, thermal in frames:
        visible_stamp = visible_stamps[frame_index(VISIBLE, visible)]
        thermal_stamp = thermal_stamps[frame_index(THERMAL, thermal)]
        assert abs(visible_stamp - thermal_stamp) <= slop * NS_PER_S
    try:
        scan_bag(ReplayOptions(bag=bag, progress=False, clock="stamp"))
    except BagError as error:
        assert "no visible/thermal pair" in str(error)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("empty", ["both", "thermal"])
def test_topics_without_messages(tmp_path, storage, empty):
    visible = [] if empty == "both" else [START_NS]
    bag = write_pairs(tmp_path / "bag", storage, visible, [])
    empty_topic = VISIBLE if empty == "both" else THERMAL
    with pytest.raises(BagError, match=rf"topic {empty_topic} in bag .* has no messages"):
        read_with_replay_reader(bag)
    with pytest.raises(BagError, match=rf"topic {empty_topic} in bag .* has no messages"):
        read_with_training_source(bag)
    with pytest.raises(BagError, match="has no messages"):
        scan_bag(ReplayOptions(bag=bag, progress=False))


OTHER_TYPES = ("std_msgs/msg/String", "sensor_msgs/msg/Imu", "sensor_msgs/msg/CameraInfo")


def other_message(store, msgtype: str) -> bytes:
    """A default-valued message of ``msgtype``, serialised as CDR."""
    from rosbags.typesys.stores.ros2_kilted import (builtin_interfaces__msg__Time as Time,
                                                    std_msgs__msg__Header as Header)

    header = Header(stamp=Time(sec=1_700_000_000, nanosec=0), frame_id="cam")
    values = {"std_msgs/msg/String": lambda t: t(data="hot"),
              "sensor_msgs/msg/Imu": lambda t: t(
                  header=header, orientation=store.types["geometry_msgs/msg/Quaternion"](
                      x=0.0, y=0.0, z=0.0, w=1.0),
                  orientation_covariance=np.zeros(9),
                  angular_velocity=store.types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                  angular_velocity_covariance=np.zeros(9),
                  linear_acceleration=store.types["geometry_msgs/msg/Vector3"](
                      x=0.0, y=0.0, z=0.0),
                  linear_acceleration_covariance=np.zeros(9)),
              "sensor_msgs/msg/CameraInfo": lambda t: t(
                  header=header, height=4, width=6, distortion_model="plumb_bob",
                  d=np.zeros(5), k=np.zeros(9), r=np.zeros(9), p=np.zeros(12), binning_x=0,
                  binning_y=0, roi=store.types["sensor_msgs/msg/RegionOfInterest"](
                      x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))}
    return bytes(store.serialize_cdr(values[msgtype](store.types[msgtype]), msgtype))


@FUZZ
@given(storage=STORAGES, msgtype=st.sampled_from(OTHER_TYPES),
       on=st.sampled_from((VISIBLE, THERMAL)))
def test_other_message_types_on_an_image_topic_are_named(tmp_path, storage, msgtype, on):
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = ros2_typestore()
    bag = fresh_dir(tmp_path) / "bag"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(bag, version=8, storage_plugin=plugin) as writer:
        for topic in (VISIBLE, THERMAL):
            kind = msgtype if topic == on else IMAGE_TYPE
            connection = writer.add_connection(topic, kind, typestore=store)
            for index in range(3):
                data = (other_message(store, kind) if topic == on else
                        image_cdr(visible_frame(index), "bgr8", START_NS + index, "cam"))
                writer.write(connection, START_NS + index, data)
    with pytest.raises(BagError, match=rf"{on} in bag .* holds {msgtype}, expected {IMAGE_TYPE}"):
        read_with_replay_reader(bag)
    expected = rf"{on} in bag .* holds {msgtype}, expected {IMAGE_TYPE} or {COMPRESSED_IMAGE_TYPE}"
    with pytest.raises(BagError, match=expected):
        read_with_training_source(bag)
    with pytest.raises(BagError, match=rf"holds {msgtype}"):
        scan_bag(ReplayOptions(bag=bag, progress=False))


@FUZZ
@given(storage=STORAGES, payload=st.one_of(
    st.binary(max_size=80),
    st.binary(max_size=60).map(lambda tail: b"\x00\x01\x00\x00" + tail),
    st.integers(1, 200).map(lambda cut: image_cdr(visible_frame(0), "bgr8", START_NS,
                                                  "cam")[:cut])))
def test_garbage_under_the_image_type_is_refused(tmp_path, storage, payload):
    """Bytes that claim to be a sensor_msgs/Image (a buggy recorder, a mislabelled topic)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = ros2_typestore()
    bag = fresh_dir(tmp_path) / "bag"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(bag, version=8, storage_plugin=plugin) as writer:
        visible = writer.add_connection(VISIBLE, IMAGE_TYPE, typestore=store)
        thermal = writer.add_connection(THERMAL, IMAGE_TYPE, typestore=store)
        for index in range(2):
            writer.write(visible, START_NS + index, payload)
            writer.write(thermal, START_NS + index,
                         image_cdr(thermal_frame(index), "mono16", START_NS + index, "cam"))
    try:
        for topic, _, array in read_with_replay_reader(bag):
            frame_index(topic, array)
        event("decoded")  # only possible if the payload is a valid image message
    except LutfuseError as error:
        event(f"refused: {type(error).__name__}")
        assert str(error)
    try:
        read_with_training_source(bag)
    except LutfuseError as error:
        event(f"training refused: {type(error).__name__}")
        assert str(error)

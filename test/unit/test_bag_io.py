"""Tests of the bag tools' writing and reading: lutfuse_ros.bag.{writer,reader,make,sources}.

Bags are real rosbag2 (sqlite3, mcap) and rosbag1 files written with ``rosbags``; messages are
checked against ``rclpy.serialization`` both ways.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from lutfuse_ros.bag.common import (
    IMAGE_TYPE,
    NS_PER_S,
    BagError,
    cdr_header_stamp_ns,
    ros2_typestore,
)
from lutfuse_ros.bag.make import MakeBagOptions, make_bag
from lutfuse_ros.bag.reader import ImageBagReader, decode_image, decode_thermal, decode_visible_bgr
from lutfuse_ros.bag.sources import THERMAL, VISIBLE, build_schedule
from lutfuse_ros.bag.writer import ImageBagWriter, ThreadedBagWriter, image_cdr
from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.ros.conversions import array_to_image

START_S = 1_700_000_000.0
START_NS = int(START_S) * NS_PER_S


def pattern(index: int, height: int = 24, width: int = 32, channels: int = 3) -> np.ndarray:
    """A frame whose content encodes ``index`` (distinct per frame and channel)."""
    rng = np.random.default_rng(index)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture()
def image_folders(tmp_path: Path) -> tuple[Path, Path]:
    """4 registered pairs (PNG, lossless) plus one visible image without a partner."""
    visible, thermal = tmp_path / "vi", tmp_path / "ir"
    visible.mkdir()
    thermal.mkdir()
    for index in range(4):
        cv2.imwrite(str(visible / f"{index:03d}.png"), pattern(index))
        cv2.imwrite(str(thermal / f"{index:03d}.png"), pattern(100 + index, channels=1))
    cv2.imwrite(str(visible / "orphan.png"), pattern(99))
    return visible, thermal


def read_all(path: Path, **kwargs) -> list:
    with ImageBagReader(path) as reader:
        topics = kwargs.pop("topics", None) or reader.resolve_topics()
        return list(reader.messages(topics, **kwargs))


def write_bag(path: Path, items: list[tuple[str, int, np.ndarray, str, int]],
              storage: str = "sqlite3") -> Path:
    """Write ``(topic, stamp_ns, array, encoding, log_ns)`` items with ImageBagWriter."""
    with ImageBagWriter(path, storage) as writer:
        for topic, stamp, array, encoding, log_ns in items:
            writer.write_image(topic, array, encoding, stamp, "cam", log_ns=log_ns)
    return path


class TestMakeBagFromFolders:
    @pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
    def test_stamps_order_content_and_frame_ids(self, image_folders, tmp_path, storage):
        visible_dir, thermal_dir = image_folders
        out = tmp_path / "bag"
        result = make_bag(MakeBagOptions(visible_dir, thermal_dir, out, storage=storage,
                                         rate=10.0, start_time=START_S, progress=False))
        assert result.counts == {"/visible/image": 4, "/thermal/image": 4}
        messages = read_all(out)
        assert [m.topic for m in messages] == ["/visible/image", "/thermal/image"] * 4
        visible = [m for m in messages if m.topic == "/visible/image"]
        assert [m.stamp_ns for m in visible] == [START_NS + i * NS_PER_S // 10 for i in range(4)]
        assert all(m.log_ns == m.stamp_ns for m in messages)
        for index, message in enumerate(visible):
            decoded = decode_image(message.cdr)
            assert (decoded.encoding, decoded.frame_id) == ("bgr8", "visible_camera")
            np.testing.assert_array_equal(decoded.array, pattern(index))
        thermal = decode_image(messages[1].cdr)
        assert (thermal.encoding, thermal.frame_id) == ("mono8", "thermal_camera")
        np.testing.assert_array_equal(thermal.array, pattern(100, channels=1))
        with ImageBagReader(out) as reader:
            assert reader.storage == storage

    def test_encodings_rgb8_and_mono16(self, image_folders, tmp_path):
        out = tmp_path / "bag"
        make_bag(MakeBagOptions(*image_folders, out, encoding="rgb8", thermal_encoding="mono16",
                                max_frames=2, start_time=START_S, progress=False))
        messages = read_all(out)
        assert len(messages) == 4
        visible = decode_image(messages[0].cdr)
        assert visible.encoding == "rgb8"
        np.testing.assert_array_equal(visible.array, pattern(0)[..., ::-1])
        np.testing.assert_array_equal(decode_visible_bgr(messages[0].cdr), pattern(0))
        thermal = decode_thermal(messages[1].cdr)
        assert thermal.dtype == np.uint16
        np.testing.assert_array_equal(thermal, pattern(100, channels=1).astype(np.uint16) * 257)

    def test_resize_applies_to_both_streams(self, image_folders, tmp_path):
        out = tmp_path / "bag"
        make_bag(MakeBagOptions(*image_folders, out, resize=(16, 12), max_frames=1,
                                progress=False))
        shapes = [decode_image(m.cdr).array.shape for m in read_all(out)]
        assert shapes == [(12, 16, 3), (12, 16)]

    def test_refuses_to_overwrite_without_force(self, image_folders, tmp_path):
        out = tmp_path / "bag"
        make_bag(MakeBagOptions(*image_folders, out, max_frames=1, progress=False))
        with pytest.raises(FileExistsError, match="--force"):
            make_bag(MakeBagOptions(*image_folders, out, max_frames=2, progress=False))
        assert len(read_all(out)) == 2
        make_bag(MakeBagOptions(*image_folders, out, max_frames=3, force=True, progress=False))
        assert len(read_all(out)) == 6
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "ir", "vi"]

    def test_failure_midway_leaves_nothing_behind(self, image_folders, tmp_path):
        visible_dir, thermal_dir = image_folders
        (thermal_dir / "002.png").write_bytes(b"not a png")
        out = tmp_path / "bag"
        with pytest.raises(InputError, match="002.png"):
            make_bag(MakeBagOptions(visible_dir, thermal_dir, out, progress=False))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ir", "vi"]

    def test_mixed_inputs_are_refused(self, image_folders, tmp_path):
        visible_dir, thermal_dir = image_folders
        with pytest.raises(InputError, match="both"):
            make_bag(MakeBagOptions(visible_dir, thermal_dir / "000.png", tmp_path / "bag"))

    def test_invalid_options_name_the_option(self, image_folders, tmp_path):
        with pytest.raises(ConfigError, match="--encoding"):
            MakeBagOptions(*image_folders, tmp_path / "b", encoding="mono8")
        with pytest.raises(ConfigError, match="absolute"):
            MakeBagOptions(*image_folders, tmp_path / "b", visible_topic="visible/image")


@pytest.mark.shared
class TestMakeBagFromVideos:
    def test_real_clip_uses_container_fps_and_frame_pairs(self, shared_dir, tmp_path):
        video = shared_dir / "data" / "video"
        out = tmp_path / "bag"
        result = make_bag(MakeBagOptions(video / "vi" / "1230_1202.mp4",
                                         video / "ir" / "1230_1202.mp4", out, max_frames=5,
                                         start_time=START_S, storage="mcap", progress=False))
        assert result.rate == pytest.approx(22.0)
        messages = read_all(out)
        visible = [m for m in messages if m.topic == "/visible/image"]
        thermal = [m for m in messages if m.topic == "/thermal/image"]
        assert [m.stamp_ns for m in visible] == [START_NS + round(i * NS_PER_S / 22)
                                                 for i in range(5)]
        assert [m.stamp_ns for m in thermal] == [m.stamp_ns for m in visible]
        capture = cv2.VideoCapture(str(video / "ir" / "1230_1202.mp4"))
        for message in thermal:
            ok, frame = capture.read()
            assert ok
            np.testing.assert_array_equal(decode_thermal(message.cdr),
                                          cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        capture.release()
        assert decode_visible_bgr(visible[0].cdr).shape == (480, 640, 3)

    def test_thermal_rate_and_offset(self, shared_dir, tmp_path):
        video = shared_dir / "data" / "video"
        out = tmp_path / "bag"
        make_bag(MakeBagOptions(video / "vi" / "0117_1605.mp4", video / "ir" / "0117_1605.mp4",
                                out, max_frames=10, thermal_rate=9.0, thermal_offset=0.005,
                                resize=(64, 48), start_time=START_S, progress=False))
        thermal = [m for m in read_all(out) if m.topic == "/thermal/image"]
        # 10 frames at 30 Hz span 0.3 s: thermal samples at 0, 1/9, 2/9 s (+5 ms).
        assert [m.stamp_ns - START_NS for m in thermal] == [
            round(j * NS_PER_S / 9) + 5_000_000 for j in range(3)]


class TestSchedule:
    def test_thermal_resampled_to_nearest_frame(self):
        events = build_schedule(31, 30.0, 0, thermal_rate=9.0)
        thermal = [e for e in events if e.stream == THERMAL]
        assert [e.source_index for e in thermal] == [0, 3, 7, 10, 13, 17, 20, 23, 27, 30]
        assert [e.stamp_ns for e in events] == sorted(e.stamp_ns for e in events)
        assert sum(e.stream == VISIBLE for e in events) == 31

    def test_ties_put_visible_first_and_offset_moves_thermal(self):
        events = build_schedule(2, 10.0, 1000, thermal_offset_s=-1e-6)
        assert [(e.stream, e.stamp_ns) for e in events] == [
            (THERMAL, 0), (VISIBLE, 1000), (THERMAL, 100_000_000), (VISIBLE, 100_001_000)]
        assert [e.stream for e in build_schedule(1, 10.0, 0)] == [VISIBLE, THERMAL]

    def test_rejects_stamps_before_the_epoch_and_bad_rates(self):
        with pytest.raises(ConfigError, match="before the epoch"):
            build_schedule(2, 10.0, 0, thermal_offset_s=-0.5)
        with pytest.raises(ConfigError, match="--thermal-rate"):
            build_schedule(2, 10.0, 0, thermal_rate=0.0)


class TestRclpyInterop:
    def test_rosbags_serialisation_is_read_by_rclpy(self):
        array = pattern(5)
        cdr = image_cdr(array, "bgr8", START_NS + 123, "cam")
        message = deserialize_message(cdr, Image)
        assert (message.height, message.width, message.step) == (24, 32, 96)
        assert (message.header.stamp.sec, message.header.stamp.nanosec) == (int(START_S), 123)
        assert message.header.frame_id == "cam" and message.encoding == "bgr8"
        assert bytes(message.data) == array.tobytes()
        assert cdr_header_stamp_ns(cdr) == START_NS + 123

    def test_rclpy_serialisation_is_read_back_from_a_bag(self, tmp_path):
        array = pattern(6, channels=1).astype(np.uint16) * 200
        message = array_to_image(array, "mono16")
        message.header.stamp.sec, message.header.stamp.nanosec = 42, 7
        with ImageBagWriter(tmp_path / "bag", "mcap") as writer:
            writer.write_cdr("/thermal/image", 42 * NS_PER_S + 7, serialize_message(message))
        (read,) = read_all(tmp_path / "bag", topics=["/thermal/image"])
        assert read.stamp_ns == 42 * NS_PER_S + 7
        np.testing.assert_array_equal(decode_thermal(read.cdr), array)
        assert deserialize_message(read.cdr, Image) == message


class TestRosbag1Input:
    def test_rosbag1_images_become_ros2_cdr(self, tmp_path):
        from rosbags.rosbag1 import Writer
        from rosbags.typesys import Stores, get_typestore

        store = get_typestore(Stores.ROS1_NOETIC)
        types = store.types
        path = tmp_path / "drive.bag"
        with Writer(path) as writer:
            connections = {topic: writer.add_connection(topic, IMAGE_TYPE, typestore=store)
                           for topic in ("/camera/rgb/image_raw", "/camera/ir/image_raw")}
            for index in range(3):
                for topic, array, encoding in (
                        ("/camera/rgb/image_raw", pattern(index), "bgr8"),
                        ("/camera/ir/image_raw", pattern(50 + index, channels=1), "mono8")):
                    stamp = types["builtin_interfaces/msg/Time"](sec=100 + index, nanosec=9)
                    message = types[IMAGE_TYPE](
                        header=types["std_msgs/msg/Header"](seq=index, stamp=stamp,
                                                            frame_id="cam"),
                        height=24, width=32, encoding=encoding, is_bigendian=0,
                        step=32 * array.itemsize * (3 if array.ndim == 3 else 1),
                        data=array.reshape(-1))
                    writer.write(connections[topic], (100 + index) * NS_PER_S,
                                 store.serialize_ros1(message, IMAGE_TYPE))
        with ImageBagReader(path) as reader:
            assert reader.storage == "rosbag1"
            visible, thermal = reader.resolve_topics()
            assert (visible, thermal) == ("/camera/rgb/image_raw", "/camera/ir/image_raw")
            messages = list(reader.messages((visible, thermal)))
        assert len(messages) == 6
        first = deserialize_message(messages[0].cdr, Image)
        assert first.header.frame_id == "cam" and first.header.stamp.sec == 100
        np.testing.assert_array_equal(decode_visible_bgr(messages[0].cdr), pattern(0))
        np.testing.assert_array_equal(decode_thermal(messages[-1].cdr), pattern(52, channels=1))
        assert [m.stamp_ns for m in messages[::2]] == [(100 + i) * NS_PER_S + 9 for i in range(3)]


class TestReaderErrors:
    @pytest.fixture()
    def good_bags(self, tmp_path) -> dict[str, Path]:
        streams = (("/visible/image", 3, "bgr8"), ("/thermal/image", 1, "mono8"))
        items = [(topic, START_NS + i, pattern(i, channels=c), enc, START_NS + i)
                 for i in range(20) for topic, c, enc in streams]
        return {storage: write_bag(tmp_path / storage, items, storage)
                for storage in ("sqlite3", "mcap")}

    @pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
    @pytest.mark.parametrize("fraction", [0.0, 0.3, 0.97])
    def test_truncated_storage_file(self, good_bags, storage, fraction):
        bag = good_bags[storage]
        (storage_file,) = [p for p in bag.iterdir() if p.suffix in (".db3", ".mcap")]
        storage_file.write_bytes(storage_file.read_bytes()[:int(storage_file.stat().st_size
                                                                * fraction)])
        with pytest.raises(BagError, match=str(bag.name)):
            read_all(bag)

    def test_missing_metadata_suggests_the_storage_file(self, good_bags):
        bag = good_bags["sqlite3"]
        (bag / "metadata.yaml").unlink()
        with pytest.raises(BagError, match="sqlite3.db3"):
            ImageBagReader(bag)
        assert len(read_all(bag / "sqlite3.db3")) == 40

    def test_not_a_bag_and_missing_path(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(BagError, match="not a bag"):
            ImageBagReader(tmp_path / "notes.txt")
        with pytest.raises(BagError, match="does not exist"):
            ImageBagReader(tmp_path / "nowhere")

    def test_missing_topic_lists_the_bag_topics(self, good_bags):
        with ImageBagReader(good_bags["mcap"]) as reader:
            with pytest.raises(BagError, match=r"no topic /lwir.*/thermal/image \(sensor_msgs"):
                reader.resolve_topics(thermal="/lwir")

    def test_wrong_message_type_and_empty_topic(self, tmp_path):
        from rosbags.rosbag2 import Writer

        store = ros2_typestore()
        with Writer(tmp_path / "bag", version=8) as writer:
            visible = writer.add_connection("/visible/image", IMAGE_TYPE, typestore=store)
            writer.write(visible, 1, image_cdr(pattern(0), "bgr8", 1, "cam"))
            thermal = writer.add_connection("/thermal/image", "std_msgs/msg/String",
                                            typestore=store)
            writer.write(thermal, 2, store.serialize_cdr(
                store.types["std_msgs/msg/String"](data="hot"), "std_msgs/msg/String"))
            writer.add_connection("/empty/image", IMAGE_TYPE, typestore=store)
        with ImageBagReader(tmp_path / "bag") as reader:
            with pytest.raises(BagError, match="/thermal/image .* holds std_msgs/msg/String"):
                reader.resolve_topics()
            with pytest.raises(BagError, match="/empty/image .* has no messages"):
                reader.resolve_topics(thermal="/empty/image")

    def test_topics_cannot_be_guessed(self, tmp_path):
        bag = write_bag(tmp_path / "bag", [("/cam_a/image", 1, pattern(0), "bgr8", 1),
                                           ("/cam_b/image", 1, pattern(1), "bgr8", 1)])
        with ImageBagReader(bag) as reader:
            with pytest.raises(BagError, match="--visible-topic"):
                reader.resolve_topics()
            assert reader.resolve_topics("/cam_a/image", "/cam_b/image") == (
                "/cam_a/image", "/cam_b/image")


class TestUnsortedStamps:
    @pytest.fixture()
    def unsorted_bag(self, tmp_path) -> Path:
        # Bag time increases; header stamps on the visible topic go back once (3 after 4).
        stamps = [0, 1, 2, 4, 3, 5]
        items = []
        for index, stamp in enumerate(stamps):
            items.append(("/visible/image", START_NS + stamp * 10**7, pattern(index), "bgr8",
                          START_NS + index * 10**7 + 1))
            items.append(("/thermal/image", START_NS + index * 10**7,
                          pattern(index, channels=1), "mono8", START_NS + index * 10**7 + 2))
        return write_bag(tmp_path / "bag", items)

    def test_counted_in_bag_order(self, unsorted_bag):
        with ImageBagReader(unsorted_bag) as reader:
            messages = list(reader.messages(reader.resolve_topics()))
            issues = reader.order_issues
        assert [m.log_ns for m in messages] == sorted(m.log_ns for m in messages)
        assert issues["/visible/image"].backwards == 1
        assert issues["/visible/image"].first_index == 4
        assert issues["/thermal/image"].backwards == 0

    def test_strict_reading_names_topic_and_index(self, unsorted_bag):
        with pytest.raises(BagError, match=r"/visible/image .* at message 4"):
            read_all(unsorted_bag, strict=True)

    def test_stamp_order_sorts_them(self, unsorted_bag):
        with ImageBagReader(unsorted_bag) as reader:
            visible = [m.stamp_ns for m in reader.messages(["/visible/image"], order="stamp")]
            assert reader.order_issues["/visible/image"].backwards == 0
        assert visible == sorted(visible) and len(visible) == 6


class TestWriters:
    def test_abort_leaves_nothing(self, tmp_path):
        with pytest.raises(RuntimeError):
            with ImageBagWriter(tmp_path / "bag") as writer:
                writer.write_image("/visible/image", pattern(0), "bgr8", 5, "cam")
                raise RuntimeError("stop")
        assert list(tmp_path.iterdir()) == []

    def test_rejects_mismatched_arrays(self, tmp_path):
        with pytest.raises(BagError, match="mono16 needs"):
            image_cdr(pattern(0, channels=1), "mono16", 0, "cam")
        with pytest.raises(ConfigError, match="cannot write encoding"):
            image_cdr(pattern(0), "yuv422", 0, "cam")

    def test_threaded_writer_accepts_other_threads(self, tmp_path):
        writer = ThreadedBagWriter(tmp_path / "bag", "sqlite3", False, ("/fused/image",))
        producers = [threading.Thread(target=writer.put, args=(
            "/fused/image", START_NS + i, image_cdr(pattern(i), "bgr8", START_NS + i, "f")))
            for i in range(6)]
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join()
        writer.close()
        stamps = sorted(m.stamp_ns for m in read_all(tmp_path / "bag", topics=["/fused/image"]))
        assert stamps == [START_NS + i for i in range(6)]

    def test_threaded_writer_refuses_existing_and_aborts_cleanly(self, tmp_path):
        (tmp_path / "bag").mkdir()
        with pytest.raises(FileExistsError):
            ThreadedBagWriter(tmp_path / "bag", "mcap", False)
        shutil.rmtree(tmp_path / "bag")
        writer = ThreadedBagWriter(tmp_path / "bag", "mcap", False)
        writer.put("/fused/image", 1, image_cdr(pattern(0), "bgr8", 1, "f"))
        writer.abort()
        assert list(tmp_path.iterdir()) == []


class TestMakeBagCommand:
    def test_cli_writes_then_refuses_to_overwrite(self, image_folders, tmp_path, capsys):
        from lutfuse_ros.cli.main import main

        visible_dir, thermal_dir = image_folders
        out = tmp_path / "bag"
        argv = ["make-bag", str(out), "--visible", str(visible_dir), "--thermal",
                str(thermal_dir), "--storage", "mcap", "--rate", "5", "--thermal-rate", "2.5",
                "--start-time", str(START_S), "--no-progress"]
        assert main(argv) == 0
        assert "/visible/image: 4, /thermal/image: 2" in capsys.readouterr().out
        stamps = [m.stamp_ns - START_NS for m in read_all(out, topics=["/thermal/image"])]
        assert stamps == [0, 400_000_000]
        assert main(argv) == 1
        assert "--force" in capsys.readouterr().err
        assert main([*argv, "--force", "--max-frames", "1"]) == 0
        assert len(read_all(out)) == 2

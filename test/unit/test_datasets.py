"""Training data: folder, video and rosbag sources, shared preprocessing, caching, crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lutfuse_ros.errors import InputError
from lutfuse_ros.preprocessing import AlignmentConfig, ThermalConfig
from lutfuse_ros.settings.node_settings import parse_sync_settings
from lutfuse_ros.training.data_config import DataConfig, SourceConfig
from lutfuse_ros.training.datasets import (
    CropDataset,
    FolderSource,
    FrameStore,
    VideoSource,
    build_frame_store,
)
from lutfuse_ros.training.datasets.frames import FrameSource


def write_folder_pairs(root: Path, count: int = 3, size=(40, 48), thermal_size=None) -> Path:
    """Pairs whose thermal image equals the visible image's green channel (traceable crops)."""
    rng = np.random.default_rng(1)
    (root / "vi").mkdir(parents=True)
    (root / "ir").mkdir()
    for index in range(count):
        visible = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        thermal = visible[..., 1].copy()
        if thermal_size is not None:
            thermal = cv2.resize(thermal, thermal_size[::-1], interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(root / "vi" / f"f{index:02d}.png"), visible)
        cv2.imwrite(str(root / "ir" / f"f{index:02d}.png"), thermal)
    return root


# ------------------------------------------------------------------ folders and crops
def test_folder_source_pairs_by_stem_and_subsamples(tmp_path):
    root = write_folder_pairs(tmp_path / "set", count=5)
    cv2.imwrite(str(root / "vi" / "lonely.png"), np.zeros((8, 8, 3), np.uint8))
    source = FolderSource(root, every=2)
    assert source.keys() == ["set/f00", "set/f02", "set/f04"]
    assert source.unmatched == ["lonely"]
    visible, thermal = source.read("set/f02")
    assert visible.shape == (40, 48, 3) and thermal.shape == (40, 48)
    assert FolderSource(root, max_frames=2).keys() == ["set/f00", "set/f01"]


def test_folder_source_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="not found"):
        FolderSource(tmp_path / "nothing")
    root = write_folder_pairs(tmp_path / "set", count=2)
    (tmp_path / "refs").mkdir()
    cv2.imwrite(str(tmp_path / "refs" / "f00.png"), np.zeros((40, 48), np.uint8))
    with pytest.raises(InputError, match="lacks 1 of the 2"):
        FolderSource(root, references=tmp_path / "refs")


def test_crops_keep_visible_and_thermal_registered_through_flips(tmp_path):
    store = FrameStore([FolderSource(write_folder_pairs(tmp_path / "set"))], min_side=16)
    dataset = CropDataset(store, crop_size=16, crops_per_epoch=20, flips=True, seed=3)
    assert len(dataset) == 20
    flipped = 0
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["visible"].shape == (3, 16, 16) and item["infrared"].shape == (1, 16, 16)
        # thermal was written as the visible green channel: crops and flips must agree
        assert np.array_equal(item["visible"][1].numpy(), item["infrared"][0].numpy())
        flipped += int(dataset.plan[index, 3] + dataset.plan[index, 4] > 0)
    assert flipped > 0


def test_crop_plan_is_reproducible_per_seed_and_epoch(tmp_path):
    store = FrameStore([FolderSource(write_folder_pairs(tmp_path / "set"))])
    first = CropDataset(store, 16, 10, seed=7)
    second = CropDataset(store, 16, 10, seed=7)
    assert np.array_equal(first.plan, second.plan)
    first.set_epoch(1)
    assert not np.array_equal(first.plan, second.plan)
    second.set_epoch(1)
    assert np.array_equal(first.plan, second.plan)
    fixed = CropDataset(store, 16, 10, fixed=True, seed=7)
    plan = fixed.plan.copy()
    fixed.set_epoch(5)
    assert np.array_equal(plan, fixed.plan)
    assert not np.array_equal(CropDataset(store, 16, 10, seed=8).plan, second.plan)


class CountingSource(FrameSource):
    """A real in-memory source that counts how often a frame is decoded."""

    label = "counting"

    def __init__(self):
        self.reads = 0

    def keys(self):
        return ["counting/a", "counting/b"]

    def read(self, key):
        self.reads += 1
        value = 10 if key.endswith("a") else 200
        return np.full((20, 24, 3), value, np.uint8), np.full((20, 24), 1000 + value, np.uint16)


def test_frames_are_decoded_once_and_disk_cache_is_reused(tmp_path):
    source = CountingSource()
    store = FrameStore([source], ThermalConfig(mode="fixed", fixed_range=(1000.0, 1255.0)),
                       cache_dir=tmp_path / "cache")
    dataset = CropDataset(store, 8, 30, seed=0)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            dataset[index]
    assert source.reads == 2
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    again = CountingSource()
    cached = FrameStore([again], ThermalConfig(mode="fixed", fixed_range=(1000.0, 1255.0)),
                        cache_dir=tmp_path / "cache")
    frame = cached.get(1)
    assert again.reads == 0
    # 16-bit thermal went through the node's fixed-range normalisation: 1200 -> 200
    assert frame.thermal.dtype == np.uint8 and int(frame.thermal[0, 0]) == 200


def test_preprocessing_is_the_nodes_thermal_and_alignment(tmp_path):
    root = write_folder_pairs(tmp_path / "set", count=1, size=(40, 48), thermal_size=(20, 24))
    with pytest.raises(InputError, match="alignment mode"):
        FrameStore([FolderSource(root)]).get(0)
    store = FrameStore([FolderSource(root)], alignment=AlignmentConfig(mode="resize_thermal"))
    assert store.get(0).thermal.shape == (40, 48)
    small = FrameStore([FolderSource(root)], alignment=AlignmentConfig(mode="resize_visible"),
                       min_side=32)
    frame = small.get(0)
    assert frame.thermal.shape[0] == 32 and frame.visible_bgr.shape[:2] == frame.thermal.shape
    limited = FrameStore([FolderSource(root)], alignment=AlignmentConfig(mode="resize_thermal"),
                         max_sides=[24])
    assert max(limited.get(0).thermal.shape) == 24


# ------------------------------------------------------------------ video
def write_video_pair(folder: Path, frames: int = 6) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "vi.avi", folder / "ir.avi"
    writers = [cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
               for p in paths]
    for index in range(frames):
        for writer, offset in zip(writers, (0, 100)):
            writer.write(np.full((24, 32, 3), 20 * index + offset, np.uint8))
    for writer in writers:
        writer.release()
    return paths


def test_video_source_matches_frame_n_to_frame_n_and_subsamples(tmp_path):
    visible, thermal = write_video_pair(tmp_path / "clip")
    source = VideoSource(visible, thermal, every=2, label="clip")
    assert source.keys() == ["clip/000000", "clip/000002", "clip/000004"]
    for key in source.keys():
        index = int(key.split("/")[1])
        vis, th = source.read(key)
        assert th.ndim == 2
        assert abs(int(vis.mean()) - 20 * index) <= 3
        assert abs(int(th.mean()) - 20 * index - 100) <= 3


# ------------------------------------------------------------------ rosbags
def write_bag(path: Path, storage: str, pairs: int = 6, jitter_ns: int = 3_000_000,
              thermal_shift_ns: int = 0) -> None:
    """Visible rgb8 at 10 Hz and thermal mono16 stamped ``jitter_ns`` later.

    Plus an extra thermal frame with no partner; each frame's pixels encode its index.
    """
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if storage == "ros1" else Stores.ROS2_HUMBLE)
    image_type = store.types["sensor_msgs/msg/Image"]
    header_type = store.types["std_msgs/msg/Header"]
    time_type = store.types["builtin_interfaces/msg/Time"]

    def message(stamp_ns: int, encoding: str, array: np.ndarray):
        fields = {"stamp": time_type(sec=stamp_ns // 10 ** 9, nanosec=stamp_ns % 10 ** 9),
                  "frame_id": "cam"}
        if storage == "ros1":
            fields["seq"] = 0
        data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
        return image_type(header=header_type(**fields), height=array.shape[0],
                          width=array.shape[1], encoding=encoding, is_bigendian=0,
                          step=data.size // array.shape[0], data=data)

    events = []
    for index in range(pairs):
        stamp = 10 ** 9 + index * 100_000_000
        events.append((stamp, "/vis", message(stamp, "rgb8", np.full((12, 16, 3), 10 * index + 5,
                                                                     np.uint8))))
        thermal_stamp = stamp + jitter_ns + thermal_shift_ns
        events.append((thermal_stamp, "/th", message(thermal_stamp, "mono16",
                                                     np.full((12, 16), 1000 * index, np.uint16))))
    lonely = 10 ** 9 + pairs * 100_000_000 + 50_000_000
    events.append((lonely, "/th", message(lonely, "mono16", np.zeros((12, 16), np.uint16))))
    events.sort(key=lambda event: event[0])
    if storage == "ros1":
        from rosbags.rosbag1 import Writer as Writer1

        with Writer1(path) as writer:
            connections = {t: writer.add_connection(t, image_type.__msgtype__, typestore=store)
                           for t in ("/vis", "/th")}
            for stamp, topic, msg in events:
                writer.write(connections[topic], stamp,
                             store.serialize_ros1(msg, image_type.__msgtype__))
        return
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {t: writer.add_connection(t, image_type.__msgtype__, typestore=store)
                       for t in ("/vis", "/th")}
        for stamp, topic, msg in events:
            writer.write(connections[topic], stamp,
                         store.serialize_cdr(msg, image_type.__msgtype__))


def _sync(slop: float, offset: float = 0.0):
    """The node's sync settings with another slop and thermal offset."""
    return parse_sync_settings({"sync.slop": slop, "sync.thermal_offset": offset})


@pytest.mark.parametrize("storage", ["sqlite3", "mcap", "ros1"])
def test_rosbag_pairs_by_stamp_with_slop(tmp_path, storage):
    from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource

    path = tmp_path / ("recording.bag" if storage == "ros1" else "recording")
    write_bag(path, storage)
    source = RosbagSource(path, "/vis", "/th", sync=_sync(0.01))
    keys = source.keys()
    # 6 pairs; the lonely thermal frame and (at most) the last pair awaiting a successor drop
    assert len(keys) in (5, 6)
    for key in keys:
        visible, thermal = source.read(key)
        index = (int(key.split("/")[1]) - 10 ** 9) // 100_000_000
        assert visible.shape == (12, 16, 3) and thermal.dtype == np.uint16
        assert int(visible[0, 0, 0]) == 10 * index + 5 and int(thermal[0, 0]) == 1000 * index
    assert source.describe()["pairing"]["kept"] == len(keys)


def test_rosbag_slop_offset_and_subsampling(tmp_path):
    from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource

    path = tmp_path / "late_thermal"
    write_bag(path, "sqlite3", pairs=8, thermal_shift_ns=40_000_000)
    with pytest.raises(InputError, match="no frames"):
        RosbagSource(path, "/vis", "/th", sync=_sync(0.01)).keys()
    shifted = RosbagSource(path, "/vis", "/th", sync=_sync(0.01, -0.04))
    assert len(shifted.keys()) >= 7
    every = RosbagSource(path, "/vis", "/th", sync=_sync(0.01, -0.04), every=3)
    assert len(every.keys()) == len(shifted.keys()[::3])
    with pytest.raises(InputError, match="no topic /missing"):
        RosbagSource(path, "/vis", "/missing").keys()


def test_rosbag_frames_go_through_the_shared_preprocessing(tmp_path):
    path = tmp_path / "bag"
    write_bag(path, "mcap")
    config = DataConfig(sources=[SourceConfig(kind="rosbag", path=str(path), visible_topic="/vis",
                                              thermal_topic="/th", slop=0.01)],
                        thermal=ThermalConfig(mode="fixed", fixed_range=(0.0, 5100.0)),
                        crop_size=8)
    store = build_frame_store(config)
    frame = store.get(len(store) - 1)
    index = (int(frame.key.split("/")[1]) - 10 ** 9) // 100_000_000
    assert frame.thermal.dtype == np.uint8
    assert abs(int(frame.thermal[0, 0]) - round(1000 * index * 255 / 5100)) <= 1
    assert frame.visible_bgr.shape == (12, 16, 3)


@pytest.mark.parametrize("storage", ["mcap", "ros1"])
def test_rosbag_compressed_topics_decode_like_the_node(tmp_path, storage):
    # JPEG visible and 16-bit PNG thermal (image_transport's compressed topics), read through
    # the reader replay uses and decoded with the node's image codec.
    from rosbags.typesys import Stores, get_typestore

    from lutfuse_ros.bag.common import COMPRESSED_IMAGE_TYPE
    from lutfuse_ros.image_codec import encode_image
    from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource

    store = get_typestore(Stores.ROS1_NOETIC if storage == "ros1" else Stores.ROS2_HUMBLE)
    compressed = store.types[COMPRESSED_IMAGE_TYPE]
    header, time = store.types["std_msgs/msg/Header"], store.types["builtin_interfaces/msg/Time"]
    events = []
    for index in range(4):
        stamp = 10 ** 9 + index * 100_000_000
        fields = {"stamp": time(sec=stamp // 10 ** 9, nanosec=stamp % 10 ** 9), "frame_id": "c"}
        if storage == "ros1":
            fields["seq"] = index
        visible = np.full((12, 16, 3), 40 * index + 20, np.uint8)
        thermal = np.full((12, 16), 3000 + 1000 * index, np.uint16)
        for topic, codec, array in (("/vis", "jpeg", visible), ("/th", "png", thermal)):
            data = np.frombuffer(encode_image(array, codec), np.uint8)
            events.append((stamp, topic, compressed(header=header(**fields), format=codec,
                                                    data=data)))
    if storage == "ros1":
        from rosbags.rosbag1 import Writer

        path, serialise = tmp_path / "compressed.bag", store.serialize_ros1
        writer = Writer(path)
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        path, serialise = tmp_path / "compressed", store.serialize_cdr
        writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    with writer:
        connections = {t: writer.add_connection(t, COMPRESSED_IMAGE_TYPE, typestore=store)
                       for t in ("/vis", "/th")}
        for stamp, topic, message in events:
            writer.write(connections[topic], stamp, serialise(message, COMPRESSED_IMAGE_TYPE))
    source = RosbagSource(path, "/vis", "/th")
    keys = source.keys()
    assert len(keys) >= 3  # the last pair may wait for a successor frame
    for index, key in enumerate(keys):
        visible, thermal = source.read(key)
        assert visible.shape == (12, 16, 3) and abs(int(visible[0, 0, 0]) - (40 * index + 20)) <= 2
        assert thermal.dtype == np.uint16 and int(thermal[0, 0]) == 3000 + 1000 * index

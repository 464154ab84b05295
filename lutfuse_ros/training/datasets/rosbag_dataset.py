"""Training frames from ROS bags (rosbag1, rosbag2 sqlite3 or mcap), read as replay reads them.

The bag is read by :class:`~lutfuse_ros.bag.reader.ImageBagReader`, the package's one bag
reader (same topic checks, errors and typestore as ``lutfuse replay``; ``sensor_msgs/Image``
and ``CompressedImage`` topics). Visible and thermal messages are paired by header stamp with
the node's synchroniser and :class:`~lutfuse_ros.settings.node_settings.SyncSettings`
(``config/fuse.yaml``'s ``sync.*`` unless the source overrides slop, offset or queue size),
and decoded with :mod:`lutfuse_ros.raw_image` / :mod:`lutfuse_ros.image_codec`, the ROS-free
layers of the node's own conversions. A bag recorded on the robot thus trains a model on
exactly what the node will see, on a machine without ROS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lutfuse_ros.errors import ConfigError, InputError
from lutfuse_ros.settings.node_settings import SyncSettings, parse_sync_settings
from lutfuse_ros.training.datasets.frames import SequentialSource

LOG = logging.getLogger(__name__)


class RosbagSource(SequentialSource):
    """Paired frames of two image topics of a bag.

    Args:
        path: a rosbag2 folder (sqlite3 or mcap storage), a ``.mcap``/``.db3`` storage file
            (inside one, or alone when the recording never wrote its ``metadata.yaml``), or a
            rosbag1 ``.bag`` file.
        visible_topic: visible camera topic.
        thermal_topic: thermal camera topic.
        sync: pairing settings (default: the node's defaults).
        every: keep every N-th pair.
        max_frames: keep at most this many pairs.
        label: key prefix (default: the bag's name).

    Raises:
        InputError: missing bag (here); when the frames are first read
            (:class:`~lutfuse_ros.bag.common.BagError`, an InputError): an unreadable
            (truncated, corrupt) bag, missing topics, or a topic that is not an image topic.
    """

    def __init__(self, path: str | Path, visible_topic: str, thermal_topic: str,
                 sync: SyncSettings | None = None, every: int = 1,
                 max_frames: int | None = None, label: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"rosbag {self.path} not found")
        self.label = label or self.path.stem
        self.visible_topic, self.thermal_topic = visible_topic, thermal_topic
        self.sync = sync if sync is not None else parse_sync_settings()
        self.every, self.max_frames = every, max_frames
        self.counters: dict[str, int] = {}

    def iterate(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield the kept pairs.

        Raises:
            BagError: the bag cannot be opened or read (truncated, corrupt, not a bag), a
                topic is missing, empty or not an image topic, or a message cannot be
                deserialised.
            ConversionError: an image message's fields or compressed payload are invalid.
        """
        try:
            from lutfuse_ros.bag.common import IMAGE_TYPES
            from lutfuse_ros.bag.reader import ImageBagReader
        except ImportError as error:
            raise ConfigError("rosbag sources need the 'rosbags' package (pip install "
                              "'lutfuse_ros[bag]')") from error
        with ImageBagReader(self.path, accept=IMAGE_TYPES) as reader:
            topics = reader.resolve_topics(self.visible_topic, self.thermal_topic)
            yield from self._pairs(reader.messages(topics))

    def _pairs(self, messages: Iterator[Any]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Pair and decode messages (headerless ones pair by their bag time)."""
        from lutfuse_ros.bag.reader import decode_thermal, decode_visible_bgr

        pairer = self.sync.make_pairer(allow_message_filters=False)
        kept = paired = 0
        for message in messages:
            stamp = message.stamp_ns if message.stamp_ns > 0 else message.log_ns
            add = pairer.add_visible if message.topic == self.visible_topic else \
                pairer.add_thermal
            for pair in add(stamp, message):
                index = paired
                paired += 1
                if index % self.every:
                    continue
                visible = decode_visible_bgr(pair.visible.cdr, pair.visible.msgtype)
                thermal = decode_thermal(pair.thermal.cdr, pair.thermal.msgtype)
                yield f"{self.label}/{pair.visible_stamp_ns}", visible, thermal
                kept += 1
                if self.max_frames is not None and kept >= self.max_frames:
                    self._record(pairer, paired, kept)
                    return
        self._record(pairer, paired, kept)

    def _record(self, pairer: Any, paired: int, kept: int) -> None:
        counters = pairer.counters
        self.counters = {"pairs": paired, "kept": kept,
                         **{k: int(v) for k, v in vars(counters).items()
                            if isinstance(v, (int, np.integer))}}
        LOG.info("rosbag %s: %d pairs, kept %d (every %d)", self.path, paired, kept, self.every)

    def describe(self) -> dict:
        return {"kind": "rosbag", "label": self.label, "path": str(self.path),
                "visible_topic": self.visible_topic, "thermal_topic": self.thermal_topic,
                "slop": self.sync.slop, "offset": self.sync.thermal_offset,
                "queue_size": self.sync.queue_size, "every": self.every,
                "max_frames": self.max_frames, "frames": len(self.keys()),
                "pairing": self.counters}

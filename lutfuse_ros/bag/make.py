"""Build a visible + thermal rosbag2 from image folders or two videos (``lutfuse make-bag``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lutfuse_ros.bag.common import (
    DEFAULT_THERMAL_TOPIC,
    DEFAULT_VISIBLE_TOPIC,
    NS_PER_S,
    STORAGE_IDS,
)
from lutfuse_ros.bag.sources import VISIBLE, build_schedule, open_pair_source
from lutfuse_ros.bag.writer import ImageBagWriter
from lutfuse_ros.errors import ConfigError

LOG = logging.getLogger(__name__)

VISIBLE_ENCODINGS = ("bgr8", "rgb8")
THERMAL_ENCODINGS = ("mono8", "mono16")
#: frame rate of image folders when ``rate`` is not given (Hz).
DEFAULT_FOLDER_RATE = 30.0


@dataclass
class MakeBagOptions:
    """What :func:`make_bag` writes.

    Attributes:
        visible: visible image folder or video.
        thermal: thermal image folder (same file stems) or video (same frame indices).
        output: rosbag2 directory to create.
        storage: ``sqlite3`` or ``mcap``.
        rate: visible frame rate in Hz; ``None`` uses the video's own rate (folders: 30 Hz).
        thermal_rate: thermal frame rate in Hz; ``None`` means the visible rate.
        thermal_offset: seconds added to every thermal stamp (a sensor clock offset).
        visible_topic, thermal_topic: topic names.
        encoding: visible encoding, ``bgr8`` or ``rgb8``.
        thermal_encoding: ``mono8`` or ``mono16``; ``None`` keeps the source's bit depth.
            8-bit sources become mono16 scaled by 257 (full range); 16-bit sources become
            mono8 by dropping the low byte.
        max_frames: use at most this many frame pairs.
        start_time: stamp of the first frame in seconds since the epoch; ``None`` is now.
        resize: ``(width, height)`` to resize both streams to (area interpolation).
        visible_frame_id, thermal_frame_id: header frame ids.
        force: overwrite an existing ``output``.
        progress: show a progress bar on stderr.
    """

    visible: Path
    thermal: Path
    output: Path
    storage: str = "sqlite3"
    rate: float | None = None
    thermal_rate: float | None = None
    thermal_offset: float = 0.0
    visible_topic: str = DEFAULT_VISIBLE_TOPIC
    thermal_topic: str = DEFAULT_THERMAL_TOPIC
    encoding: str = "bgr8"
    thermal_encoding: str | None = None
    max_frames: int | None = None
    start_time: float | None = None
    resize: tuple[int, int] | None = None
    visible_frame_id: str = "visible_camera"
    thermal_frame_id: str = "thermal_camera"
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self.visible, self.thermal, self.output = (Path(self.visible), Path(self.thermal),
                                                   Path(self.output))
        if self.storage not in STORAGE_IDS:
            raise ConfigError(f"--storage must be one of {', '.join(STORAGE_IDS)}, got "
                              f"{self.storage!r}")
        if self.encoding not in VISIBLE_ENCODINGS:
            raise ConfigError(f"--encoding must be one of {', '.join(VISIBLE_ENCODINGS)}, got "
                              f"{self.encoding!r}")
        if self.thermal_encoding not in (None, *THERMAL_ENCODINGS):
            raise ConfigError(f"--thermal-encoding must be one of {', '.join(THERMAL_ENCODINGS)}"
                              f", got {self.thermal_encoding!r}")
        if self.max_frames is not None and self.max_frames <= 0:
            raise ConfigError(f"--max-frames must be positive, got {self.max_frames}")
        if self.resize is not None and min(self.resize) <= 0:
            raise ConfigError(f"--resize needs a positive width and height, got {self.resize}")
        if self.visible_topic == self.thermal_topic:
            raise ConfigError(f"visible and thermal topics are both {self.visible_topic!r}")
        for name in (self.visible_topic, self.thermal_topic):
            if not name.startswith("/"):
                raise ConfigError(f"bag topic {name!r} must be absolute (start with '/')")


@dataclass
class MakeBagResult:
    """What :func:`make_bag` wrote.

    Attributes:
        path: the rosbag2 directory.
        counts: messages per topic.
        rate, thermal_rate: frame rates used (Hz).
        start_ns, end_ns: first and last stamp (ns since the epoch).
        source: description of the input.
    """

    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    rate: float = 0.0
    thermal_rate: float = 0.0
    start_ns: int = 0
    end_ns: int = 0
    source: str = ""


def convert_visible(image: np.ndarray, encoding: str, resize: tuple[int, int] | None
                    ) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> the array of a ``bgr8``/``rgb8`` message, optionally resized."""
    if resize is not None and (image.shape[1], image.shape[0]) != tuple(resize):
        image = cv2.resize(image, tuple(resize), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if encoding == "rgb8" else image


def convert_thermal(image: np.ndarray, encoding: str | None, resize: tuple[int, int] | None
                    ) -> tuple[np.ndarray, str]:
    """``(H, W)`` uint8/uint16 thermal -> ``(array, encoding)`` of a mono message.

    ``None`` keeps the bit depth; uint8 -> mono16 multiplies by 257 (0..255 -> 0..65535);
    uint16 -> mono8 keeps the high byte.
    """
    if resize is not None and (image.shape[1], image.shape[0]) != tuple(resize):
        image = cv2.resize(image, tuple(resize), interpolation=cv2.INTER_AREA)
    if encoding is None:
        encoding = "mono16" if image.dtype == np.uint16 else "mono8"
    if encoding == "mono16" and image.dtype == np.uint8:
        image = image.astype(np.uint16) * 257
    elif encoding == "mono8" and image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return image, encoding


def make_bag(options: MakeBagOptions) -> MakeBagResult:
    """Write the rosbag2 ``options`` describe (atomically: nothing at the output on failure).

    Returns:
        Counts, rates and the stamp span of what was written.

    Raises:
        FileExistsError: the output exists and ``options.force`` is false.
        InputError: the inputs cannot be opened or decoded.
        ConfigError: an invalid rate, offset or option.
    """
    from tqdm import tqdm

    if options.output.exists() and not options.force:
        raise FileExistsError(f"{options.output} exists; pass --force to overwrite it")
    source = open_pair_source(options.visible, options.thermal)
    try:
        rate = options.rate or source.fps or DEFAULT_FOLDER_RATE
        count = min(source.count, options.max_frames or source.count)
        start_s = time.time() if options.start_time is None else options.start_time
        events = build_schedule(count, rate, round(start_s * NS_PER_S), options.thermal_rate,
                                options.thermal_offset)
        LOG.info("writing %d messages (%s, visible at %.3f Hz) to %s", len(events),
                 source.description, rate, options.output)
        with ImageBagWriter(options.output, options.storage, options.force) as writer:
            writer.add_image_topic(options.visible_topic)
            writer.add_image_topic(options.thermal_topic)
            for event in tqdm(events, desc="make-bag", unit="msg", disable=not options.progress):
                if event.stream == VISIBLE:
                    array = convert_visible(source.visible.frame(event.source_index),
                                            options.encoding, options.resize)
                    writer.write_image(options.visible_topic, array, options.encoding,
                                       event.stamp_ns, options.visible_frame_id)
                else:
                    array, encoding = convert_thermal(source.thermal.frame(event.source_index),
                                                      options.thermal_encoding, options.resize)
                    writer.write_image(options.thermal_topic, array, encoding, event.stamp_ns,
                                       options.thermal_frame_id)
            counts = dict(writer.counts)
    finally:
        source.close()
    return MakeBagResult(path=options.output, counts=counts, rate=rate,
                         thermal_rate=options.thermal_rate or rate,
                         start_ns=min(e.stamp_ns for e in events),
                         end_ns=max(e.stamp_ns for e in events), source=source.description)

"""Reading image topics from rosbag2 (sqlite3, mcap) and rosbag1 bags with ``rosbags``.

The one bag reader of the package: ``lutfuse replay`` and the training datasets both read
through :class:`ImageBagReader`, with the same rules and errors. It accepts a rosbag2
directory, a single ``.db3``/``.mcap`` storage file (its folder is read when it has a
``metadata.yaml``: a split recording; the file alone when the recording never wrote one) or a
rosbag1 ``.bag`` file. It checks topics and types up front and yields
:class:`BagImageMessage` items whose ``cdr`` is always a ROS 2 CDR serialisation (rosbag1
messages are converted), ready for ``rclpy`` to publish raw or to decode
(:func:`decode_visible_bgr`, :func:`decode_thermal`: :mod:`lutfuse_ros.raw_image` for raw
images, :mod:`lutfuse_ros.image_codec` for compressed ones, no ROS needed). Replay reads
``sensor_msgs/Image`` topics only (it republishes them); training also
``sensor_msgs/CompressedImage``. Every failure of the underlying reader (truncated file,
corrupt database, damaged index) becomes a :class:`~lutfuse_ros.bag.common.BagError` naming
the bag.

Stamp order: messages come in bag-time (receive time) order. Header stamps that go backwards
on a topic are counted per topic (:attr:`ImageBagReader.order_issues`), raise with
``strict=True``, or are put back in order with ``order="stamp"`` (a bounded reordering window).
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lutfuse_ros.bag.common import (
    DEFAULT_THERMAL_TOPIC,
    DEFAULT_VISIBLE_TOPIC,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    BagError,
    cdr_header_stamp_ns,
    ros2_typestore,
    stamp_to_ns,
)
from lutfuse_ros.image_codec import decode_image as decode_compressed_payload
from lutfuse_ros.raw_image import image_to_array, thermal_to_array, visible_to_bgr

#: words that mark a topic as the visible or the thermal camera when topics are guessed.
_VISIBLE_WORDS = ("visible", "rgb", "color", "colour", "vis")
_THERMAL_WORDS = ("thermal", "infrared", "lwir", "ir")
ORDERS = ("log", "stamp")


class BagImageMessage(NamedTuple):
    """One image message of a bag.

    Attributes:
        topic: topic name.
        log_ns: bag (receive) time, ns since the epoch.
        stamp_ns: header stamp, ns since the epoch.
        cdr: ROS 2 CDR serialisation of the message.
        msgtype: ``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage``.
    """

    topic: str
    log_ns: int
    stamp_ns: int
    cdr: bytes
    msgtype: str = IMAGE_TYPE


@dataclass(frozen=True)
class TopicSummary:
    """A topic of a bag: name, message type and message count."""

    name: str
    msgtype: str | None
    count: int


@dataclass
class OrderIssues:
    """Header-stamp order problems of one topic, counted while reading.

    Attributes:
        backwards: messages whose stamp is earlier than the previous one on the topic.
        duplicates: messages whose stamp equals the previous one.
        first_index: index (on the topic) of the first such message, or ``None``.
    """

    backwards: int = 0
    duplicates: int = 0
    first_index: int | None = None


@dataclass
class DecodedImage:
    """An image message as an array.

    Attributes:
        array: the image in the layout of :mod:`lutfuse_ros.raw_image` for ``encoding``.
        encoding: the message's encoding.
        stamp_ns: header stamp (ns).
        frame_id: header frame id.
    """

    array: np.ndarray
    encoding: str
    stamp_ns: int
    frame_id: str = field(default="")


def decode_image(cdr: bytes | memoryview) -> DecodedImage:
    """Deserialise a CDR ``sensor_msgs/msg/Image`` into an array (pure Python: no ROS needed).

    Raises:
        BagError: the data is not a valid serialised Image.
        ConversionError: the image fields are inconsistent (encoding, step, data size).
    """
    try:
        message = ros2_typestore().deserialize_cdr(cdr, IMAGE_TYPE)
    except Exception as error:  # rosbags raises SerdeError, struct.error, IndexError...
        raise BagError(f"cannot deserialise a {IMAGE_TYPE} of {len(cdr)} bytes: {error}") from error
    array, encoding = image_to_array(message)
    stamp = message.header.stamp
    return DecodedImage(array, encoding, stamp_to_ns(stamp.sec, stamp.nanosec),
                        message.header.frame_id)


def _decode_any(cdr: bytes | memoryview, msgtype: str) -> tuple[np.ndarray, str]:
    """``(array, encoding)`` of a serialised Image or CompressedImage."""
    if msgtype != COMPRESSED_IMAGE_TYPE:
        decoded = decode_image(cdr)
        return decoded.array, decoded.encoding
    try:
        message = ros2_typestore().deserialize_cdr(cdr, COMPRESSED_IMAGE_TYPE)
    except Exception as error:  # rosbags raises SerdeError, struct.error, IndexError...
        raise BagError(f"cannot deserialise a {COMPRESSED_IMAGE_TYPE} of {len(cdr)} bytes: "
                       f"{error}") from error
    return decode_compressed_payload(bytes(message.data))


def decode_visible_bgr(cdr: bytes | memoryview, msgtype: str = IMAGE_TYPE) -> np.ndarray:
    """A visible image message as ``(H, W, 3)`` uint8 BGR (or ``(H, W)`` for mono).

    Raises:
        BagError: the data is not a valid serialised message of ``msgtype``.
        ConversionError: inconsistent image fields, or a compressed payload that is not a
            complete JPEG/PNG.
    """
    array, encoding = _decode_any(cdr, msgtype)
    return visible_to_bgr(array, encoding)


def decode_thermal(cdr: bytes | memoryview, msgtype: str = IMAGE_TYPE) -> np.ndarray:
    """A thermal image message as ``(H, W)`` uint8 or uint16 (raw counts kept; errors: above)."""
    array, encoding = _decode_any(cdr, msgtype)
    return thermal_to_array(array, encoding)


class ImageBagReader:
    """Read image topics of one bag; use as a context manager.

    Args:
        path: rosbag2 directory, ``.db3``/``.mcap`` file, or rosbag1 ``.bag`` file.
        accept: the message types of the topics it reads (default: ``sensor_msgs/Image``
            only, what replay republishes; :data:`~lutfuse_ros.bag.common.IMAGE_TYPES` also
            reads ``CompressedImage``).

    Raises:
        BagError: the path is missing or is not a bag (checked here); truncated or corrupt
            content is reported when the bag is opened or read.
    """

    def __init__(self, path: str | os.PathLike[str],
                 accept: tuple[str, ...] = (IMAGE_TYPE,)) -> None:
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        self.accept = tuple(accept)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_dir():
            if not (self.path / "metadata.yaml").is_file():
                storage = sorted(p.name for p in self.path.iterdir()
                                 if p.suffix in (".db3", ".mcap"))
                hint = (f"; pass the storage file inside it directly: {self.path / storage[0]}"
                        if storage else "")
                raise BagError(f"{self.path} is not a rosbag2: it has no metadata.yaml (a "
                               f"recording that was interrupted?){hint}")
        elif self.path.suffix not in (".bag", ".db3", ".mcap"):
            raise BagError(f"{self.path} is not a bag: expected a rosbag2 directory, a .db3 or "
                           ".mcap file, or a rosbag1 .bag file")
        self.is_rosbag1 = self.path.suffix == ".bag" and self.path.is_file()
        opened = self.path  # a storage file of a recording with metadata: the recording
        if self.path.suffix in (".mcap", ".db3") and (self.path.parent / "metadata.yaml").is_file():
            opened = self.path.parent
        self._reader = AnyReader([opened], default_typestore=ros2_typestore())
        self._open = False
        self.order_issues: dict[str, OrderIssues] = {}

    # -- opening -------------------------------------------------------------------------
    def open(self) -> None:  # noqa: A003 (a reader opens, as a file object does)
        """Open the bag and read its index."""
        try:
            self._reader.open()
        except Exception as error:  # AnyReaderError, FileNotFoundError, apsw/sqlite errors
            raise BagError(f"cannot open bag {self.path}: {error} (truncated or corrupt?)"
                           ) from error
        self._open = True

    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._open:
            self._open = False
            self._reader.close()

    def __enter__(self) -> ImageBagReader:
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        self.close()
        return False

    # -- contents ------------------------------------------------------------------------
    @property
    def storage(self) -> str:
        """``rosbag1``, ``sqlite3`` or ``mcap``."""
        if self.is_rosbag1:
            return "rosbag1"
        files = [self.path] if self.path.is_file() else list(self.path.iterdir())
        return "mcap" if any(p.suffix == ".mcap" for p in files) else "sqlite3"

    @property
    def topics(self) -> dict[str, TopicSummary]:
        """Every topic of the bag by name."""
        return {name: TopicSummary(name, info.msgtype, info.msgcount)
                for name, info in self._reader.topics.items()}

    @property
    def start_ns(self) -> int:
        """Bag time of the first message (ns)."""
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Bag time just after the last message (ns)."""
        return int(self._reader.end_time)

    def image_topics(self) -> list[str]:
        """Names of the topics of an accepted image type, sorted."""
        return sorted(name for name, summary in self.topics.items()
                      if summary.msgtype in self.accept)

    def require_image_topic(self, topic: str) -> TopicSummary:
        """The summary of ``topic``, checked to exist, hold Images and have messages.

        Raises:
            BagError: naming the topic and listing what the bag holds instead.
        """
        topics = self.topics
        summary = topics.get(topic)
        if summary is None:
            listed = ", ".join(f"{t.name} ({t.msgtype})" for t in topics.values()) or "none"
            raise BagError(f"bag {self.path} has no topic {topic}; its topics: {listed}")
        if summary.msgtype not in self.accept:
            raise BagError(f"topic {topic} in bag {self.path} holds {summary.msgtype}, expected "
                           f"{' or '.join(self.accept)}")
        if summary.count == 0:
            raise BagError(f"topic {topic} in bag {self.path} has no messages")
        return summary

    def resolve_topics(self, visible: str | None = None, thermal: str | None = None
                       ) -> tuple[str, str]:
        """The visible and thermal image topics: as given, the defaults, or guessed by name.

        A topic not given is :data:`DEFAULT_VISIBLE_TOPIC` / :data:`DEFAULT_THERMAL_TOPIC`
        when the bag has it (then it must hold Images), otherwise the single image topic
        whose name contains a word such as ``rgb``/``color`` (visible) or ``thermal``/``ir``
        (thermal).

        Raises:
            BagError: a topic is missing, not an Image topic, empty, or cannot be guessed.
        """
        images, names = self.image_topics(), set(self.topics)
        visible = visible or _guess_topic(images, names, DEFAULT_VISIBLE_TOPIC, _VISIBLE_WORDS,
                                          "visible", self.path)
        thermal = thermal or _guess_topic(images, names, DEFAULT_THERMAL_TOPIC, _THERMAL_WORDS,
                                          "thermal", self.path)
        if visible == thermal:
            raise BagError(f"visible and thermal topics are both {visible}")
        self.require_image_topic(visible)
        self.require_image_topic(thermal)
        return visible, thermal

    # -- messages ------------------------------------------------------------------------
    def messages(self, topics: Iterable[str], order: str = "log", reorder_window: int = 64,
                 strict: bool = False) -> Iterator[BagImageMessage]:
        """Yield the messages of ``topics``.

        Args:
            topics: image topics to read (each checked with :meth:`require_image_topic`).
            order: ``log`` (bag time, as recorded) or ``stamp`` (header stamp, sorted within
                a window of ``reorder_window`` messages).
            reorder_window: messages held back to sort by stamp (``order="stamp"``).
            strict: raise on the first header stamp that goes backwards on its topic.

        Raises:
            BagError: the bag cannot be read (truncated, corrupt), a message is not an Image,
                or (``strict``) stamps go backwards.
        """
        if order not in ORDERS:
            raise BagError(f"order must be one of {ORDERS}, got {order!r}")
        topics = list(topics)
        for topic in topics:
            self.require_image_topic(topic)
        self.order_issues = {topic: OrderIssues() for topic in topics}
        raw = self._raw_messages(topics)
        if order == "stamp":
            raw = _sorted_by_stamp(raw, max(1, reorder_window))
        yield from self._checked_order(raw, strict)

    def _raw_messages(self, topics: list[str]) -> Iterator[BagImageMessage]:
        """Messages in bag-time order, converted to CDR, with read errors wrapped."""
        connections = [c for c in self._reader.connections if c.topic in topics]
        store = ros2_typestore()
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, log_ns, data = next(iterator)
                msgtype = connection.msgtype
                if msgtype not in self.accept:
                    raise BagError(f"a message on {connection.topic} in bag {self.path} is "
                                   f"{msgtype}, expected {' or '.join(self.accept)}")
                cdr = bytes(store.ros1_to_cdr(data, msgtype) if self.is_rosbag1 else data)
                stamp_ns = cdr_header_stamp_ns(cdr)
            except StopIteration:
                return
            except BagError:
                raise
            except Exception as error:  # storage backends raise many types on corrupt data
                raise BagError(f"cannot read bag {self.path}: {type(error).__name__}: {error} "
                               "(truncated or corrupt?)") from error
            yield BagImageMessage(connection.topic, int(log_ns), stamp_ns, cdr, msgtype)

    def _checked_order(self, messages: Iterator[BagImageMessage], strict: bool
                       ) -> Iterator[BagImageMessage]:
        """Count (or refuse) header stamps that go backwards per topic."""
        last: dict[str, int] = {}
        index = dict.fromkeys(self.order_issues, 0)
        for message in messages:
            previous = last.get(message.topic)
            issues = self.order_issues[message.topic]
            if previous is not None and message.stamp_ns <= previous:
                if message.stamp_ns < previous:
                    issues.backwards += 1
                    if strict:
                        raise BagError(
                            f"header stamps on {message.topic} in bag {self.path} go backwards "
                            f"at message {index[message.topic]}: {message.stamp_ns} ns after "
                            f"{previous} ns (replay with --clock stamp to sort them)")
                else:
                    issues.duplicates += 1
                if issues.first_index is None:
                    issues.first_index = index[message.topic]
            last[message.topic] = (message.stamp_ns if previous is None
                                   else max(previous, message.stamp_ns))
            index[message.topic] += 1
            yield message


def _sorted_by_stamp(messages: Iterator[BagImageMessage], window: int
                     ) -> Iterator[BagImageMessage]:
    """Re-emit messages in header-stamp order, holding back at most ``window`` of them."""
    heap: list[tuple[int, int, BagImageMessage]] = []
    counter = itertools.count()
    for message in messages:
        heapq.heappush(heap, (message.stamp_ns, next(counter), message))
        if len(heap) > window:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def _guess_topic(images: list[str], names: set[str], default: str, words: tuple[str, ...],
                 role: str, path: Path) -> str:
    """The default topic if present, else the one image topic whose name has one of ``words``.

    The default topic is taken whatever its type; the type is checked later.
    """
    if default in names:
        return default
    candidates = [t for t in images if any(w in t.lower().replace("/", " ").replace("_", " ")
                                           .split() for w in words)]
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(images) or "none"
    why = "several match" if candidates else "none matches"
    raise BagError(f"cannot tell which topic of {path} is the {role} camera ({why}); image "
                   f"topics: {listed}; name it with --{role}-topic")

"""The ``data`` section of a training config: frame sources, shared preprocessing, crops.

Read by :mod:`lutfuse_ros.training.config` (which re-exports these classes) like every other
section: unknown keys, wrong types and out-of-range values raise
:class:`~lutfuse_ros.errors.ConfigError` naming the key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lutfuse_ros.errors import ConfigError
from lutfuse_ros.preprocessing import AlignmentConfig, ThermalConfig
from lutfuse_ros.settings.node_settings import SyncSettings, parse_sync_settings
from lutfuse_ros.training.dataclass_yaml import check_choice, check_min

SOURCE_KINDS = ("folder", "video", "rosbag")


@dataclass
class SourceConfig:
    """One source of registered visible/thermal frames.

    Attributes:
        kind: ``folder`` (``vi/`` + ``ir/`` image folders matched by file stem), ``video``
            (two frame-aligned video files) or ``rosbag`` (rosbag1 / rosbag2 sqlite3 or mcap).
        path: folder holding ``visible_dir`` and ``thermal_dir`` (folder), or the bag.
        visible: visible video file (video kind).
        thermal: thermal video file (video kind).
        visible_dir: visible sub-folder name (folder kind).
        thermal_dir: thermal sub-folder name (folder kind).
        references: optional folder of precomputed teacher outputs for this source, matched by
            file stem (folder kind only).
        visible_topic: visible image topic (rosbag kind).
        thermal_topic: thermal image topic (rosbag kind).
        slop: approximate-time pairing tolerance in seconds (rosbag kind; ``None``: the
            node's ``sync.slop``).
        offset: seconds added to thermal stamps before pairing (rosbag kind; ``None``: the
            node's ``sync.thermal_offset``).
        queue_size: pairing queue length (rosbag kind; ``None``: the node's
            ``sync.queue_size``). The other ``sync.*`` settings are always the node's, so a
            bag pairs in training as the node pairs it.
        every: keep every N-th frame or pair (subsampling).
        max_frames: keep at most this many frames after subsampling.
        max_side: downscale frames whose longer side exceeds this (0: never).
        name: label used in frame keys and provenance (default: derived from the path).
    """

    kind: str = "folder"
    path: str | None = None
    visible: str | None = None
    thermal: str | None = None
    visible_dir: str = "vi"
    thermal_dir: str = "ir"
    references: str | None = None
    visible_topic: str | None = None
    thermal_topic: str | None = None
    slop: float | None = None
    offset: float | None = None
    queue_size: int | None = None
    every: int = 1
    max_frames: int | None = None
    max_side: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, SOURCE_KINDS)
        if self.kind in ("folder", "rosbag") and not self.path:
            raise ConfigError(f"a {self.kind} source needs 'path'")
        if self.kind == "video" and not (self.visible and self.thermal):
            raise ConfigError("a video source needs 'visible' and 'thermal' video files")
        if self.kind == "rosbag" and not (self.visible_topic and self.thermal_topic):
            raise ConfigError("a rosbag source needs 'visible_topic' and 'thermal_topic'")
        if self.references and self.kind != "folder":
            raise ConfigError("'references' (precomputed teacher outputs) needs a folder source")
        check_min("every", self.every, 1)
        check_min("max_side", self.max_side, 0)
        if self.max_frames is not None:
            check_min("max_frames", self.max_frames, 1)
        if self.kind == "rosbag":
            self.sync_settings()

    def sync_settings(self) -> SyncSettings:
        """The node's sync settings with this source's ``slop``, ``offset``, ``queue_size``.

        Raises:
            ConfigError: a value the node would refuse, named by its node parameter.
        """
        overrides = {"sync.slop": self.slop, "sync.thermal_offset": self.offset,
                     "sync.queue_size": self.queue_size}
        return parse_sync_settings({name: value for name, value in overrides.items()
                                    if value is not None})

    @property
    def label(self) -> str:
        """Short name of the source for frame keys."""
        if self.name:
            return self.name
        base = Path(self.path or self.visible or "source")
        return base.stem if self.kind == "video" else (base.name or str(base))


@dataclass
class DataConfig:
    """Training data: sources, shared preprocessing and the crop plan.

    Attributes:
        sources: frame sources (at least one).
        thermal: thermal normalisation, as in the node (:class:`ThermalConfig`).
        alignment: thermal-to-visible registration, as in the node (:class:`AlignmentConfig`).
        crop_size: side of the square training crops in pixels.
        crops_per_epoch: crops per epoch (over all ranks).
        fixed_crops: cut the crops once (the same crops every epoch, as the MMDRFuse paper's
            pre-cut patches; needed by the dynamic refresh memory) instead of anew per epoch.
        flips: random horizontal and vertical flips.
        cache_dir: folder for decoded frames (``.npz``), reused by later runs; None keeps the
            cache in memory only.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    crop_size: int = 128
    crops_per_epoch: int = 1000
    fixed_crops: bool = False
    flips: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("data.sources must list at least one source")
        check_min("crop_size", self.crop_size, 8)
        check_min("crops_per_epoch", self.crops_per_epoch, 1)

"""The options of one ``lutfuse replay`` (:class:`ReplayOptions`), checked when created."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from lutfuse_ros.bag.report import report_paths
from lutfuse_ros.errors import ConfigError

NODE_MODES = ("auto", "external")


@dataclass
class ReplayOptions:
    """Settings of one replay (the ``lutfuse replay`` options).

    Attributes:
        bag: input bag (rosbag2 directory or file, or rosbag1 ``.bag``).
        output: rosbag2 to record ``fused/image`` into; ``None`` records nothing.
        report_prefix: write ``PREFIX.json``, ``PREFIX.md``, ``PREFIX_latency.png`` (and the
            child node's log ``PREFIX_node.log``, replaced every run); ``None`` only prints
            the report.
        storage: storage of the output bag, ``sqlite3`` or ``mcap``.
        rate: playback speed factor in real-time mode.
        as_fast_as_possible: ignore recorded timing; flow control paces the playback.
        node: ``auto`` (start the node) or ``external`` (use a running one).
        params_file: parameters file of the node (passed to it with ``auto``; read for its
            synchronisation parameters in both modes).
        node_params: ``name:=value`` overrides passed to the node with ``-p``.
        namespace: the node's namespace.
        visible_topic, thermal_topic: bag topics; ``None`` finds them.
        domain_id: ``ROS_DOMAIN_ID``; ``None`` picks a private one (``auto``) or uses the
            environment's (``external``).
        clock: ``log`` (bag time) or ``stamp`` (header stamps, sorted) playback order.
        max_in_flight: pairs in flight when playing as fast as possible (>= 1; see
            :class:`~lutfuse_ros.bag.player.FlowControl`).
        stall_timeout: seconds without output before a pair in flight is given up.
        node_timeout: seconds to wait for the node to come up.
        drain_timeout: seconds to wait for outputs after the last publish.
        metrics_frames: fused frames evaluated with the fusion metrics (0: none).
        temporal_frames: consecutive pairs in the middle of the bag whose fused frames are
            scored for temporal stability (0: none). Their images are kept in memory until
            the end (about 2.5 MB per 640x480 pair).
        force: overwrite existing outputs.
        progress: show progress bars.
    """

    bag: Path
    output: Path | None = None
    report_prefix: Path | None = None
    storage: str = "sqlite3"
    rate: float = 1.0
    as_fast_as_possible: bool = False
    node: str = "auto"
    params_file: Path | None = None
    node_params: list[str] = field(default_factory=list)
    namespace: str = "/"
    visible_topic: str | None = None
    thermal_topic: str | None = None
    domain_id: int | None = None
    clock: str = "log"
    max_in_flight: int = 1
    stall_timeout: float = 5.0
    node_timeout: float = 120.0
    drain_timeout: float = 3.0
    metrics_frames: int = 20
    temporal_frames: int = 30
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.node not in NODE_MODES:
            raise ConfigError(f"--node must be one of {NODE_MODES}, got {self.node!r}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"--rate must be a positive factor, got {self.rate}")
        if self.metrics_frames < 0:
            raise ConfigError(f"--metrics-frames must be >= 0, got {self.metrics_frames}")
        if self.temporal_frames < 0:
            raise ConfigError(f"--temporal-frames must be >= 0, got {self.temporal_frames}")
        if self.params_file is not None and not Path(self.params_file).is_file():
            raise ConfigError(f"--params-file {self.params_file} does not exist")
        for text in self.node_params:
            if ":=" not in text:
                raise ConfigError(f"node parameter {text!r} must be NAME:=VALUE")

    def output_paths(self) -> list[Path]:
        """The results the replay writes (never overwritten without ``force``)."""
        paths = [self.output] if self.output is not None else []
        if self.report_prefix is not None:
            paths += report_paths(self.report_prefix)
        return paths

    def node_log_path(self) -> Path | None:
        """Where the child node's output goes (with a report prefix).

        A log of the latest run, replaced by every run; it is kept after a failure, for the
        full story.
        """
        if self.report_prefix is None or self.node != "auto":
            return None
        return Path(f"{self.report_prefix}_node.log")

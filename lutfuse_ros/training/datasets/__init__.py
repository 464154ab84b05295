"""Training data: frame sources (folders, videos, rosbags), the frame cache and crops."""

from __future__ import annotations

from lutfuse_ros.training.config import resolve_path
from lutfuse_ros.training.data_config import DataConfig, SourceConfig
from lutfuse_ros.training.datasets.crops import CropDataset
from lutfuse_ros.training.datasets.folder_dataset import FolderSource, VideoSource
from lutfuse_ros.training.datasets.frames import Frame, FrameSource, FrameStore, preprocess_pair


def build_source(config: SourceConfig) -> FrameSource:
    """Instantiate the source a :class:`SourceConfig` describes."""
    if config.kind == "folder":
        return FolderSource(resolve_path(config.path), config.visible_dir, config.thermal_dir,
                            resolve_path(config.references), config.every, config.max_frames,
                            config.label)
    if config.kind == "video":
        return VideoSource(resolve_path(config.visible), resolve_path(config.thermal),
                           config.every, config.max_frames, config.label)
    from lutfuse_ros.training.datasets.rosbag_dataset import RosbagSource

    return RosbagSource(resolve_path(config.path), config.visible_topic, config.thermal_topic,
                        config.sync_settings(), config.every, config.max_frames, config.label)


def build_frame_store(config: DataConfig) -> FrameStore:
    """All frames of a :class:`DataConfig` with the node's preprocessing."""
    sources = [build_source(source) for source in config.sources]
    return FrameStore(sources, config.thermal, config.alignment,
                      [source.max_side for source in config.sources], config.crop_size,
                      resolve_path(config.cache_dir))


__all__ = ["CropDataset", "FolderSource", "Frame", "FrameSource", "FrameStore", "VideoSource",
           "build_frame_store", "build_source", "preprocess_pair"]

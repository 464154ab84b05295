"""Quality-of-service presets for the node's image topics, chosen by a string parameter.

Camera drivers publish either best effort (``sensor_data``) or reliable. A best-effort
subscription matches both kinds of publisher, a reliable one only reliable publishers; a
reliable publisher is matched by both kinds of subscriber. But a best-effort subscription
makes a reliable publisher send best effort, and large frames are then lost where the
publisher's transport cannot carry them, so the input default is ``auto``
(:data:`AUTO_PRESET`): match each topic's publishers (:mod:`lutfuse_ros.ros.input_qos`). The
output publishes ``reliable``. Queues stay short (KEEP_LAST with a small depth) so a slow
consumer never builds a backlog of stale frames.
"""

from __future__ import annotations

from types import MappingProxyType

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from lutfuse_ros.errors import ConfigError

#: preset name -> reliability policy; every preset is KEEP_LAST and VOLATILE.
QOS_RELIABILITY = MappingProxyType({
    "sensor_data": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
})
QOS_PRESETS = tuple(QOS_RELIABILITY)
#: Input preset that matches the reliability of the topic's publishers (not a fixed profile).
AUTO_PRESET = "auto"


def make_qos(preset: str, depth: int) -> QoSProfile:
    """Build the QoS profile of an image topic.

    Args:
        preset: ``sensor_data`` (best effort, like ``rclpy.qos.qos_profile_sensor_data``) or
            ``reliable``.
        depth: KEEP_LAST history depth, >= 1.

    Returns:
        A KEEP_LAST, VOLATILE profile with the preset's reliability.

    Raises:
        ConfigError: unknown preset or depth < 1.
    """
    reliability = QOS_RELIABILITY.get(preset)
    if reliability is None:
        hint = (f" ({AUTO_PRESET!r} is resolved against the publishers by "
                "lutfuse_ros.ros.input_qos)" if preset == AUTO_PRESET else "")
        raise ConfigError(f"unknown QoS preset {preset!r}; choose one of "
                          f"{', '.join(QOS_PRESETS)}{hint}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"QoS depth must be an integer >= 1, got {depth!r}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)

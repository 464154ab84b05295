"""The node's image subscriptions, with their reliability matched to the camera publishers.

With ``qos.input: auto`` (the default) each input topic is subscribed with the reliability of
its publishers, as ``image_proc`` does: reliable when every publisher found is reliable, best
effort when any is best effort (a reliable subscription would not match it). While no
publisher exists the subscription is **reliable** (:data:`NO_PUBLISHER_RELIABILITY`): a
reliable camera (``image_transport``'s default) is then matched from its first frame, and a
best-effort one, which a reliable subscription does not match, raises an incompatible-QoS
event that makes the node look at the publishers at once (no warning is logged for it). A
timer looks at the publishers every :data:`MATCH_PERIOD_S` anyway (sooner after a match or
incompatibility event) and re-creates a subscription whose matched reliability changed, so
cameras may start, stop and be replaced in any order.

Why it matters: a best-effort subscription makes a reliable writer send best effort, and then
the writer's own transport decides whether large frames survive. With Fast DDS's default
transports in the camera's process most 640x480 frames are lost that way (measured: 0-15 of
40); subscribing reliable to a reliable camera delivers all of them.

``sensor_data`` and ``reliable`` keep a fixed reliability (no matching).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from lutfuse_ros.ros.qos import AUTO_PRESET, make_qos

#: Seconds between looks at the input topics' publishers.
MATCH_PERIOD_S = 0.5
#: Seconds between checks for a match or incompatible-QoS event (then a look at once).
EVENT_CHECK_PERIOD_S = 0.05
#: Reliability used while a topic has no publisher (see the module docstring).
NO_PUBLISHER_RELIABILITY = ReliabilityPolicy.RELIABLE
_NAMES = {ReliabilityPolicy.RELIABLE: "reliable", ReliabilityPolicy.BEST_EFFORT: "best effort"}


def reliability_name(policy: Any) -> str:
    """``reliable``, ``best effort`` or the policy's own name."""
    return _NAMES.get(policy, getattr(policy, "name", str(policy)).lower())


def matched_reliability(publishers: Sequence[Any]) -> ReliabilityPolicy:
    """The subscription reliability that matches every publisher.

    Args:
        publishers: ``rclpy`` ``TopicEndpointInfo`` of a topic's publishers (or anything with
            ``qos_profile.reliability``).

    Returns:
        BEST_EFFORT when any publisher is best effort, RELIABLE when all are reliable,
        :data:`NO_PUBLISHER_RELIABILITY` when there is none.
    """
    if not publishers:
        return NO_PUBLISHER_RELIABILITY
    if all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


def describe_publishers(publishers: Sequence[Any]) -> str:
    """``/ns/camera (reliable), /other (best effort)`` or ``none``."""
    if not publishers:
        return "none"
    return ", ".join(f"{_node_name(info)} ({reliability_name(info.qos_profile.reliability)})"
                     for info in publishers)


def _node_name(info: Any) -> str:
    namespace = info.node_namespace.rstrip("/")
    return f"{namespace}/{info.node_name}"


@dataclass
class _Input:
    """One input topic: its callback, subscription and what it was matched to."""

    topic: str
    callback: Callable[[Any], None]
    message_type: type = Image
    subscription: Any = None
    reliability: Any = None
    publishers: tuple = ()


class InputSubscriptions:
    """The image subscriptions of an active session.

    Args:
        node: the node that owns them.
        preset: ``auto``, ``sensor_data`` or ``reliable`` (``qos.input``).
        depth: KEEP_LAST depth (``qos.input_depth``).
        callbacks: stream name -> ``(relative topic, callback(msg, message_info))``; the
            info is rclpy's ``MessageInfo`` (None with an rclpy that has none).
        message_types: stream name -> message class (``sensor_msgs/Image`` where absent;
            ``sensor_msgs/CompressedImage`` for a compressed camera).
        callback_group: rclpy callback group of the subscriptions and the timer (None: the
            node's default).
        on_rematch: called with ``(stream, message)`` after a subscription was re-created
            or first matched to publishers (for the log).
        on_lost: called with ``(stream, count)`` when the middleware reports samples lost on
            a subscription (the ``message_lost`` event; Fast DDS counts samples of which
            only some fragments arrived).
    """

    def __init__(self, node: Any, preset: str, depth: int,
                 callbacks: dict[str, tuple[str, Callable[[Image, Any], None]]],
                 on_rematch: Callable[[str, str], None] | None = None,
                 on_lost: Callable[[str, int], None] | None = None,
                 message_types: dict[str, type] | None = None,
                 callback_group: Any = None) -> None:
        self._node = node
        self._group = callback_group
        self._on_lost = on_lost
        self._preset = preset
        self._depth = depth
        self._on_rematch = on_rematch
        types = message_types or {}
        self._inputs = {stream: _Input(topic, _with_message_info(callback),
                                       types.get(stream, Image))
                        for stream, (topic, callback) in callbacks.items()}
        self._timer = None
        fixed = None if preset == AUTO_PRESET else make_qos(preset, depth)
        for stream, entry in self._inputs.items():
            entry.publishers = self._publishers(entry)
            self._subscribe(stream, entry, fixed if fixed is not None else
                            self._auto_qos(matched_reliability(entry.publishers)))
        # Fixed presets look at the publishers too (for diagnostics), never re-subscribe.
        self._graph_changed = False
        self._ticks = 0
        self._ticks_per_look = max(1, round(MATCH_PERIOD_S / EVENT_CHECK_PERIOD_S))
        self._timer = node.create_timer(EVENT_CHECK_PERIOD_S, self._tick,
                                        callback_group=callback_group)

    @property
    def matching(self) -> bool:
        """Whether the reliability follows the publishers (``auto``)."""
        return self._preset == AUTO_PRESET

    def reliability(self, stream: str) -> Any:
        """The reliability ``stream`` is subscribed with now."""
        return self._inputs[stream].reliability

    def publishers(self, stream: str) -> tuple:
        """The publishers of ``stream`` found at the last look (every :data:`MATCH_PERIOD_S`)."""
        return self._inputs[stream].publishers

    def _tick(self) -> None:
        self._ticks += 1
        if self._graph_changed or self._ticks >= self._ticks_per_look:
            self._graph_changed, self._ticks = False, 0
            self.rematch()

    def _on_graph_event(self, _info: Any = None) -> None:
        """A match or an incompatible publisher on an input: look at the publishers now."""
        self._graph_changed = True

    def rematch(self) -> list[str]:
        """Look at the publishers again; re-create subscriptions whose reliability changed.

        Returns:
            The streams whose subscription was re-created.
        """
        changed = []
        for stream, entry in self._inputs.items():
            publishers = self._publishers(entry)
            wanted = matched_reliability(publishers)
            came_or_went = ({_key(p) for p in publishers} != {_key(p) for p in entry.publishers})
            entry.publishers = publishers
            if self.matching and wanted != entry.reliability:
                self._node.destroy_subscription(entry.subscription)
                self._subscribe(stream, entry, self._auto_qos(wanted))
                changed.append(stream)
            if (came_or_went or stream in changed) and self._on_rematch is not None:
                self._on_rematch(stream, self.describe(stream))
        return changed

    def describe(self, stream: str) -> str:
        """``visible/image subscribed reliable (auto: publishers /ns/cam (reliable))``."""
        entry = self._inputs[stream]
        how = (f"auto: publishers {describe_publishers(entry.publishers)}" if self.matching
               else f"qos.input {self._preset}; publishers "
                    f"{describe_publishers(entry.publishers)}")
        return (f"{self._node.resolve_topic_name(entry.topic)} subscribed "
                f"{reliability_name(entry.reliability)} ({how})")

    def close(self) -> None:
        """Destroy the timer and the subscriptions."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
        for entry in self._inputs.values():
            if entry.subscription is not None:
                self._node.destroy_subscription(entry.subscription)
                entry.subscription = None

    def _auto_qos(self, reliability: Any) -> QoSProfile:
        qos = make_qos("reliable", self._depth)
        qos.reliability = reliability
        return qos

    def _subscribe(self, stream: str, entry: _Input, qos: QoSProfile) -> None:
        entry.subscription = self._node.create_subscription(
            entry.message_type, entry.topic, entry.callback, qos,
            event_callbacks=self._event_callbacks(stream), callback_group=self._group)
        entry.reliability = qos.reliability

    def _event_callbacks(self, stream: str) -> Any:
        """Event callbacks of a subscription.

        Lost samples go to ``on_lost``; with ``auto``, match and incompatible-QoS events
        trigger a look (replacing rclpy's warning, which fixed presets keep: there an
        incompatible camera stays unmatched).
        """
        try:
            from rclpy.event_handler import SubscriptionEventCallbacks
        except ImportError:   # rclpy before Iron
            from rclpy.qos_event import SubscriptionEventCallbacks
        options = {}
        if self._on_lost is not None:
            options["message_lost"] = lambda info: self._on_lost(stream, info.total_count_change)
        if self.matching:
            options.update(incompatible_qos=self._on_graph_event, matched=self._on_graph_event)
        while True:
            try:
                return SubscriptionEventCallbacks(**options)
            except TypeError:  # an event this rclpy does not know: go without it
                if "matched" in options:
                    options.pop("matched")
                elif "message_lost" in options:
                    options.pop("message_lost")
                else:
                    raise

    def _publishers(self, entry: _Input) -> tuple:
        return tuple(self._node.get_publishers_info_by_topic(
            self._node.resolve_topic_name(entry.topic)))


def _with_message_info(callback: Callable[[Image, Any], None]) -> Callable:
    """The callback in the form this rclpy calls.

    ``callback`` itself where rclpy passes ``MessageInfo`` to two-argument callbacks (Iron
    and later), else a one-argument wrapper that passes None.
    """
    from rclpy.subscription import Subscription

    if hasattr(Subscription, "CallbackType"):
        return callback
    return lambda msg: callback(msg, None)


def _key(info: Any) -> tuple:
    return (info.node_namespace, info.node_name, tuple(info.endpoint_gid))

"""An exact-stamp stand-in of ``message_filters`` for the adapter tests.

The real package comes with a ROS 2 install and is not installable from PyPI.
"""

from __future__ import annotations

import types

S = 1_000_000_000  # ns per second


def stand_in_message_filters() -> types.SimpleNamespace:
    """An exact-stamp stand-in of message_filters.

    Like the real Python policy, it never forgets an old timeline by itself.
    """

    class SimpleFilter:
        def __init__(self):
            self.callbacks = []

        def registerCallback(self, callback, *args):  # noqa: N802 (message_filters API)
            self.callbacks.append((callback, args))

        def signalMessage(self, *msg):  # noqa: N802
            for callback, args in self.callbacks:
                callback(*(msg + args))

    class ApproximateTimeSynchronizer(SimpleFilter):
        created = 0

        def __init__(self, filters, queue_size, slop, allow_headerless=False):
            super().__init__()
            type(self).created += 1
            self.queues = [{}, {}]
            self.newest = 0
            for index, input_filter in enumerate(filters):
                input_filter.registerCallback(self.add, index)

        def add(self, msg, index):
            stamp = msg.header.stamp.nanoseconds
            if stamp < self.newest - S:  # stuck: behind what was already emitted
                return
            self.queues[index][stamp] = msg
            for common in sorted(set(self.queues[0]) & set(self.queues[1])):
                self.newest = max(self.newest, common)
                self.signalMessage(self.queues[0].pop(common), self.queues[1].pop(common))

    return types.SimpleNamespace(SimpleFilter=SimpleFilter,
                                 ApproximateTimeSynchronizer=ApproximateTimeSynchronizer)

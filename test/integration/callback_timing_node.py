"""The real fusion node with camera callbacks and model swaps timed.

The entry time of every camera callback and the start and end of every model swap are
recorded, for the test that model swaps do not stall the cameras.

``python callback_timing_node.py OUT_JSON --ros-args ...`` runs
:func:`lutfuse_ros.ros.node.main` unchanged except that
:meth:`~lutfuse_ros.ros.session.ActiveSession._on_image` and
:meth:`~lutfuse_ros.ros.node.FusionNode._swap_model_locked` note ``time.monotonic()`` (and
the thread) when they run; ``OUT_JSON`` gets ``{"callbacks": [[t, thread], ...], "swaps":
[[start, end, thread], ...]}`` when the node exits.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    """Instrument the two methods, run the node, write the timings."""
    from lutfuse_ros.ros.node import FusionNode
    from lutfuse_ros.ros.node import main as node_main
    from lutfuse_ros.ros.session import ActiveSession

    callbacks: list[tuple[float, str]] = []
    swaps: list[tuple[float, float, str]] = []
    on_image, swap = ActiveSession._on_image, FusionNode._swap_model_locked

    # The same parameters as the original: rclpy passes MessageInfo by the callback's arity.
    def timed_on_image(self, msg, info, stream):
        callbacks.append((time.monotonic(), threading.current_thread().name))
        return on_image(self, msg, info, stream)

    def timed_swap(self, *args, **kwargs):
        start = time.monotonic()
        try:
            return swap(self, *args, **kwargs)
        finally:
            swaps.append((start, time.monotonic(), threading.current_thread().name))

    ActiveSession._on_image = timed_on_image
    FusionNode._swap_model_locked = timed_swap
    try:
        return node_main([argv[0], *argv[2:]])
    finally:
        Path(argv[1]).write_text(json.dumps({"callbacks": callbacks, "swaps": swaps}))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

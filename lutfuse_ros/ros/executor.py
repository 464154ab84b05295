"""The node's executor: camera callbacks inline, everything else on one helper thread.

rclpy's ``MultiThreadedExecutor`` hands every callback to a thread pool. At 2 x 30 Hz of
640x480 images that hand-off (a future per message, a thread wake-up, the GIL passed back
and forth) costs more than the fusion itself on a 2-core CPU: measured on an AMD EPYC (AVX2),
mini-model at 1 thread, a 30 Hz 640x480 camera pair, node and camera on the same 2 cores,
the fused output fell to 471 of 600 pairs with the multi-threaded executor and kept all 600
with a single-threaded one.

:class:`CameraFirstExecutor` is a single-threaded executor for the groups it is given (the
camera subscriptions and timers of :class:`~lutfuse_ros.ros.session.ActiveSession`): their
callbacks run on the spinning thread, with no hand-off. Callbacks of every other group
(parameter, lifecycle and ``~/reload_model`` services) run on one helper thread, so a model
swap that loads and warms up a model for a second does not stall the cameras. The pattern is
the custom executor of the ``ros2/examples`` repository (``examples_rclpy_executors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rclpy.executors import (ConditionReachedException, Executor, ExternalShutdownException,
                             ShutdownException, TimeoutException)

_NOTHING_READY = (ShutdownException, ExternalShutdownException, TimeoutException,
                  ConditionReachedException)


class CameraFirstExecutor(Executor):
    """Run the given callback groups inline and the rest on one helper thread.

    Args:
        inline_groups: callback groups whose callbacks run on the spinning thread (they must
            be cheap: the camera callbacks only validate and pair messages).
        context: the rclpy context (the default one when None).
    """

    def __init__(self, inline_groups: Iterable[Any], *, context: Any = None) -> None:
        super().__init__(context=context)
        self._inline_groups = tuple(inline_groups)
        self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lutfuse-services")
        self._pending: list[Any] = []

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Wait up to ``timeout_sec`` for one ready callback and run or dispatch it."""
        self._spin_once(timeout_sec, lambda: False)

    def spin_once_until_future_complete(self, future: Any,
                                        timeout_sec: float | None = None) -> None:
        """Like :meth:`spin_once`, returning early once ``future`` is done."""
        future.add_done_callback(lambda _future: self.wake())
        self._spin_once(timeout_sec, future.done)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        """Stop executing callbacks; wait for the helper thread's callback to finish."""
        done = super().shutdown(timeout_sec)
        self._helper.shutdown(wait=True)
        return done

    def _spin_once(self, timeout_sec: float | None, condition: Callable[[], bool]) -> None:
        try:
            handler, entity, _node = self.wait_for_ready_callbacks(timeout_sec, None,
                                                                   condition)
        except _NOTHING_READY:
            return
        group = getattr(entity, "callback_group", None)
        if any(group is inline for inline in self._inline_groups):
            handler()
            handler.result()  # re-raises the callback's exception, as rclpy's executors do
        else:
            self._helper.submit(handler)
            self._pending.append(handler)
        for task in [task for task in self._pending if task.done()]:
            self._pending.remove(task)
            task.result()

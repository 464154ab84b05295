"""The lutfuse fusion node: a thin lifecycle node over the ROS-free fusion pipeline.

Topics (relative, remappable): ``visible/image`` and ``thermal/image`` in, ``fused/image``
(and optionally ``fused/image/compressed``) out, ``/diagnostics``. Lifecycle:

- ``configure`` validates the parameters, loads the artifact and builds the pipeline; it
  returns FAILURE with a message naming the bad parameter;
- ``activate`` opens the topics and starts the worker thread (:mod:`lutfuse_ros.ros.session`);
- ``deactivate`` closes them; ``cleanup`` releases the model.

With the parameter ``autostart`` (default true) :func:`main` configures and activates the node
itself, so ``ros2 run lutfuse_ros fusion_node`` and ``lutfuse node`` work without a lifecycle
manager. While the node is configured, parameter changes apply at once
(:mod:`lutfuse_ros.ros.live_params`): sync, output, thermal, alignment and diagnostics
parameters are validated like at configure and applied to the next pair; setting a model
parameter (:data:`~lutfuse_ros.ros.model_loading.MODEL_PARAMETERS`) loads the new model on a
loader thread, proves it with a warm-up fuse and swaps it in atomically, or refuses the change
with the reason and keeps the old model. The service ``~/reload_model`` (``std_srvs/Trigger``)
reloads the artifact from its current path the same way (a model file replaced on disk). QoS,
input transports and ``use_cv_bridge`` take effect at the next ``configure`` (``autostart`` is
read once, at start).
Configure warms the model up the same way, so a model that cannot fuse fails configure.

The camera subscriptions and timers have a callback group of their own
(:attr:`FusionNode.camera_group`); :func:`main` spins a
:class:`~lutfuse_ros.ros.executor.CameraFirstExecutor`, which runs them on the spinning thread
and the parameter and service callbacks on a helper thread, so the cameras keep being served
while a model loads.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import Trigger

from lutfuse_ros.errors import ConfigError, LutfuseError
from lutfuse_ros.ros.executor import CameraFirstExecutor
from lutfuse_ros.ros.live_params import deferred, restep, settings_to_apply
from lutfuse_ros.ros.model_loading import MODEL_PARAMETERS, describe_model, load_step
from lutfuse_ros.ros.params import declare_node_parameters, node_parameter_values
from lutfuse_ros.ros.session import ActiveSession
from lutfuse_ros.ros.transport import apply_transport_profile
from lutfuse_ros.settings.node_settings import NodeSettings, parse_settings
from lutfuse_ros.settings.schema import SPECS, check_value
from lutfuse_ros.stream.step_slot import StepSlot

NODE_NAME = "fusion_node"
_SUCCESS, _FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class FusionNode(LifecycleNode):
    """Synchronise visible and thermal images, fuse them, publish the fused image.

    Args:
        node_name: the node's name (remappable with ``-r __node:=...``).
        **kwargs: passed to ``rclpy.lifecycle.LifecycleNode``.
    """

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._rejected_overrides = declare_node_parameters(self)
        self.add_on_set_parameters_callback(self._check_parameter_update)
        self._settings: NodeSettings | None = None
        self._slot: StepSlot | None = None
        self._session: ActiveSession | None = None
        self._swap_lock = threading.Lock()
        self._camera_group = MutuallyExclusiveCallbackGroup()
        self._reload_service = self.create_service(Trigger, "~/reload_model",
                                                   self._on_reload_model)

    @property
    def camera_group(self) -> MutuallyExclusiveCallbackGroup:
        """The callback group of the camera subscriptions and the session's timers."""
        return self._camera_group

    @property
    def settings(self) -> NodeSettings | None:
        """The settings of the last successful configure (None while unconfigured)."""
        return self._settings

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate parameters, load the artifact, build the pipeline."""
        try:
            if self._rejected_overrides:
                raise ConfigError("; ".join(self._rejected_overrides.values()))
            settings = parse_settings(node_parameter_values(self))
            step = _off_executor(load_step, settings)
        except LutfuseError as error:
            self.get_logger().error(f"configure failed: {error}")
            return _FAILURE
        self._settings = settings
        self._slot = StepSlot(step)
        self.get_logger().info(f"configured: model {describe_model(self._slot.step)}")
        return _SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the topics and start the worker."""
        try:
            self._session = ActiveSession(self, self._settings, self._slot,
                                          callback_group=self._camera_group)
        except LutfuseError as error:
            self.get_logger().error(f"activate failed: {error}")
            return _FAILURE
        qos = self._settings.qos
        self.get_logger().info(
            f"active: {' + '.join(self._session.input_topics)} -> "
            f"{self.resolve_topic_name('fused/image')} (QoS in {qos.input}/{qos.input_depth}, "
            f"out {qos.output}/{qos.output_depth}); "
            + "; ".join(self._session.inputs.describe(s) for s in ("visible", "thermal")))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the topics and stop the worker."""
        self._close_session()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model."""
        self.release()
        return _SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything."""
        self.release()
        return _SUCCESS

    def release(self) -> None:
        """Close the session (if active) and the pipeline; safe to call repeatedly."""
        self._close_session()
        if self._slot is not None:
            self._slot.step.pipeline.close()
        self._slot, self._settings = None, None

    def _close_session(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    def _check_parameter_update(self, parameters: list) -> SetParametersResult:
        for parameter in parameters:
            spec = SPECS.get(parameter.name)
            problem = spec and check_value(spec, parameter.value if not spec.is_array
                                           else list(parameter.value))
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        changed = {parameter.name: (list(parameter.value) if SPECS[parameter.name].is_array
                                    else parameter.value)
                   for parameter in parameters if parameter.name in SPECS}
        if self._slot is not None and changed:
            with self._swap_lock:
                applied, message = self._apply_change(changed)
            if not applied:
                return SetParametersResult(successful=False, reason=message)
        for parameter in parameters:
            self._rejected_overrides.pop(parameter.name, None)
        return SetParametersResult(successful=True)

    def _apply_change(self, changed: dict[str, Any]) -> tuple[bool, str]:
        """Validate a change of a configured node like configure does, then apply it.

        Model parameters load and swap a model; live ones take effect with the next pair;
        deferred ones wait for the next configure.

        Returns:
            ``(True, what happened)`` or ``(False, why nothing changed)``.
        """
        try:
            candidate = parse_settings({**node_parameter_values(self), **changed})
        except LutfuseError as error:
            return False, str(error)
        if set(changed) & set(MODEL_PARAMETERS):
            return self._swap_model_locked(changed, candidate)
        settings = settings_to_apply(self._settings, candidate, new_model=False)
        message = "parameter change accepted"
        if settings != self._settings:
            try:
                step = restep(self._slot.step, settings)
            except LutfuseError as error:
                return False, str(error)
            self._install(settings, step, retire=None)
            message = f"applied live: {', '.join(sorted(changed))}"
            self.get_logger().info(message)
        later = deferred(changed)
        if later:
            self.get_logger().info(f"{', '.join(later)}: takes effect at the next configure "
                                   "(deactivate, cleanup, configure, activate)")
        return True, message

    def _install(self, settings: NodeSettings, step: Any, retire: Any) -> None:
        """Put ``step`` in the slot and ``settings`` in force (session included)."""
        self._slot.swap(step, retire=retire)
        self._settings = settings
        if self._session is not None:
            self._session.apply_settings(settings)

    def _on_reload_model(self, request: Trigger.Request, response: Trigger.Response,
                         ) -> Trigger.Response:
        """``~/reload_model``: load the artifact again from its current path and swap it in."""
        if self._slot is None:
            response.success, response.message = False, "not configured: nothing to reload"
            return response
        response.success, response.message = self._swap_model_from({})
        return response

    def _swap_model_from(self, changed: dict[str, Any]) -> tuple[bool, str]:
        """Load the model of the current parameters updated by ``changed``; swap it in.

        Runs on the executor thread (parameter or service callback), one swap at a time; the
        worker keeps fusing with the old model while the new one loads.

        Returns:
            ``(True, what was loaded)`` or ``(False, why the old model was kept)``.
        """
        with self._swap_lock:
            return self._swap_model_locked(changed)

    def _swap_model_locked(self, changed: dict[str, Any],
                           candidate: NodeSettings | None = None) -> tuple[bool, str]:
        origin = (f"parameter change {sorted(changed)}" if changed else "reload_model")
        try:
            if candidate is None:
                candidate = parse_settings({**node_parameter_values(self), **changed})
            settings = settings_to_apply(self._settings, candidate, new_model=True)
            sample = self._session.last_good_pair if self._session is not None else None
            step = _off_executor(load_step, settings, sample)
        except LutfuseError as error:
            reason = f"{origin} refused, the current model keeps running: {error}"
            self.get_logger().warning(reason)
            if self._session is not None:
                self._session.model_refused(reason)
            return False, reason
        self._install(settings, step, retire=lambda previous: previous.pipeline.close())
        if self._session is not None:
            self._session.model_swapped(step)
        message = f"{origin}: now fusing with {describe_model(step)}"
        self.get_logger().info(message)
        return True, message


def _off_executor(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` on a loader thread and wait for it (its exception re-raised).

    The waiting executor thread holds no lock the camera callbacks need, and the GIL is
    released while it waits, so with :class:`~lutfuse_ros.ros.executor.CameraFirstExecutor`
    (parameter and service callbacks on its helper thread) the cameras keep being served.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # re-raised on the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="lutfuse-model-loader", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _autostart(node: FusionNode) -> bool:
    """Configure and activate; log and return False when a transition fails."""
    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != _SUCCESS:
            node.get_logger().error(f"autostart: {transition.__name__.removeprefix('trigger_')} "
                                    "failed; exiting")
            return False
    return True


def main(args: list[str] | None = None, *, transport_profile: bool = True) -> int:
    """Run the fusion node until shutdown (``ros2 run lutfuse_ros fusion_node``).

    Args:
        args: full argv including the program name and any ``--ros-args`` part;
            ``sys.argv`` when None.
        transport_profile: apply the shipped Fast DDS profile unless the user chose
            transports (:func:`lutfuse_ros.ros.transport.apply_transport_profile`).

    Returns:
        0 after a normal shutdown, 1 when autostart could not configure or activate.
    """
    decision = apply_transport_profile() if transport_profile else None
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    status = 0
    try:
        node = FusionNode()
        if decision is not None:
            node.get_logger().info(decision.reason)
        if node.get_parameter("autostart").value and not _autostart(node):
            status = 1
        else:
            # Cameras inline; parameter and service callbacks (model loads) on a helper.
            executor = CameraFirstExecutor([node.camera_group])
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())

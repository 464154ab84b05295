"""The lutfuse fusion node: a thin lifecycle node over the ROS-free fusion pipeline.

Topics (relative, remappable): ``visible/image`` and ``thermal/image`` in, ``fused/image``
(and optionally ``fused/image/compressed``) out, ``/diagnostics``. Lifecycle:

- ``configure`` validates the parameters, loads the artifact and builds the pipeline; it
  returns FAILURE with a message naming the bad parameter;
- ``activate`` opens the topics and starts the worker thread (:mod:`lutfuse_ros.ros.session`);
- ``deactivate`` closes them; ``cleanup`` releases the model.

With the parameter ``autostart`` (default true) :func:`main` configures and activates the node
itself, so ``ros2 run lutfuse_ros fusion_node`` and ``lutfuse node`` work without a lifecycle
manager. Parameter changes take effect at the next ``configure``, except the model parameters
(:data:`~lutfuse_ros.ros.model_swap.MODEL_PARAMETERS`): setting one of them while the node is
configured loads the new model, proves it with a warm-up fuse and swaps it in atomically, or
refuses the change with the reason and keeps the old model. The service ``~/reload_model``
(``std_srvs/Trigger``) reloads the artifact from its current path the same way (a model file
replaced on disk).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_srvs.srv import Trigger

from lutfuse_ros.errors import ConfigError, LutfuseError
from lutfuse_ros.ros.model_swap import (MODEL_PARAMETERS, StepSlot, build_pipeline,
                                        describe_model, load_step, make_step, model_settings)
from lutfuse_ros.ros.params import SPECS, check_value, declare_node_parameters, \
    node_parameter_values
from lutfuse_ros.ros.session import ActiveSession
from lutfuse_ros.ros.settings import NodeSettings, parse_settings
from lutfuse_ros.ros.transport import apply_transport_profile

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
        self._reload_service = self.create_service(Trigger, "~/reload_model",
                                                   self._on_reload_model)

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
            pipeline = build_pipeline(settings)
        except LutfuseError as error:
            self.get_logger().error(f"configure failed: {error}")
            return _FAILURE
        self._settings = settings
        self._slot = StepSlot(make_step(settings, pipeline))
        self.get_logger().info(f"configured: model {describe_model(self._slot.step)}")
        return _SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the topics and start the worker."""
        try:
            self._session = ActiveSession(self, self._settings, self._slot)
        except LutfuseError as error:
            self.get_logger().error(f"activate failed: {error}")
            return _FAILURE
        qos = self._settings.qos
        self.get_logger().info(
            f"active: {self.resolve_topic_name('visible/image')} + "
            f"{self.resolve_topic_name('thermal/image')} -> "
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
        names = {parameter.name for parameter in parameters}
        if self._slot is not None and names & set(MODEL_PARAMETERS):
            changed = {parameter.name: (list(parameter.value) if SPECS[parameter.name].is_array
                                        else parameter.value)
                       for parameter in parameters if parameter.name in SPECS}
            swapped, message = self._swap_model_from(changed)
            if not swapped:
                return SetParametersResult(successful=False, reason=message)
        for parameter in parameters:
            self._rejected_overrides.pop(parameter.name, None)
        if self._settings is not None and names - set(MODEL_PARAMETERS):
            self.get_logger().info("parameter change accepted; it takes effect at the next "
                                   "configure (deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)

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

    def _swap_model_locked(self, changed: dict[str, Any]) -> tuple[bool, str]:
        origin = (f"parameter change {sorted(changed)}" if changed else "reload_model")
        try:
            candidate = parse_settings({**node_parameter_values(self), **changed})
            settings = model_settings(self._settings, candidate)
            sample = self._session.last_good_pair if self._session is not None else None
            step = load_step(settings, sample)
        except LutfuseError as error:
            reason = f"{origin} refused, the current model keeps running: {error}"
            self.get_logger().warning(reason)
            if self._session is not None:
                self._session.model_refused(reason)
            return False, reason
        previous = self._slot.swap(step)
        previous.pipeline.close()
        self._settings = settings
        if self._session is not None:
            self._session.model_swapped(step)
        message = f"{origin}: now fusing with {describe_model(step)}"
        self.get_logger().info(message)
        return True, message


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
            executor = SingleThreadedExecutor()
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

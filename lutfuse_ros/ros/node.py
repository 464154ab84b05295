"""The lutfuse fusion node: a thin lifecycle node over the ROS-free fusion pipeline.

Topics (relative, remappable): ``visible/image`` and ``thermal/image`` in, ``fused/image``
(and optionally ``fused/image/compressed``) out, ``/diagnostics``. Lifecycle:

- ``configure`` validates the parameters, loads the artifact and builds the pipeline; it
  returns FAILURE with a message naming the bad parameter;
- ``activate`` opens the topics and starts the worker thread (:mod:`lutfuse_ros.ros.session`);
- ``deactivate`` closes them; ``cleanup`` releases the model.

With the parameter ``autostart`` (default true) :func:`main` configures and activates the node
itself, so ``ros2 run lutfuse_ros fusion_node`` and ``lutfuse node`` work without a lifecycle
manager. Parameter changes take effect at the next ``configure``.
"""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from lutfuse_ros.artifacts import load_artifact
from lutfuse_ros.backends import create_backend
from lutfuse_ros.errors import ArtifactError, ConfigError, LutfuseError
from lutfuse_ros.pipeline import FusionPipeline
from lutfuse_ros.ros.conversions import ImageConverter
from lutfuse_ros.ros.fusion_step import FusionStep
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
        self._step: FusionStep | None = None
        self._session: ActiveSession | None = None

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
        self._step = FusionStep(pipeline, settings.output,
                                ImageConverter(prefer_cv_bridge=settings.use_cv_bridge))
        manifest = pipeline.artifact.manifest
        self.get_logger().info(
            f"configured: model {pipeline.artifact.name} ({manifest.get('family')}, "
            f"{manifest.get('parameters')} parameters) on {pipeline.backend.describe()}")
        return _SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Open the topics and start the worker."""
        try:
            self._session = ActiveSession(self, self._settings, self._step)
        except LutfuseError as error:
            self.get_logger().error(f"activate failed: {error}")
            return _FAILURE
        qos = self._settings.qos
        self.get_logger().info(
            f"active: {self.resolve_topic_name('visible/image')} + "
            f"{self.resolve_topic_name('thermal/image')} -> "
            f"{self.resolve_topic_name('fused/image')} (QoS in {qos.input}/{qos.input_depth}, "
            f"out {qos.output}/{qos.output_depth})")
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
        if self._step is not None:
            self._step.pipeline.close()
        self._step, self._settings = None, None

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
        for parameter in parameters:
            self._rejected_overrides.pop(parameter.name, None)
        if self._settings is not None:
            self.get_logger().info("parameter change accepted; it takes effect at the next "
                                   "configure (deactivate, cleanup, configure, activate)")
        return SetParametersResult(successful=True)


def build_pipeline(settings: NodeSettings) -> FusionPipeline:
    """Load the artifact and create the backend the settings name.

    Raises:
        ConfigError: the artifact cannot be loaded or the backend/device cannot run it; the
            message names the parameter.
    """
    try:
        artifact = load_artifact(settings.artifact)
    except ArtifactError as error:
        raise ConfigError(f"parameter 'artifact' = {settings.artifact!r}: {error}") from None
    try:
        backend = create_backend(settings.backend, artifact, settings.device,
                                 **settings.backend_options)
    except (LutfuseError, TypeError) as error:
        raise ConfigError(f"parameters 'backend' = {settings.backend!r}, 'device' = "
                          f"{settings.device!r}, 'backend_options' = "
                          f"{dict(settings.backend_options)}: {error}") from None
    return FusionPipeline(backend, settings.pipeline)


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

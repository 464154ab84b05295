"""The node's parameters as ROS sees them: descriptors built from the ROS-free schema.

The names, types, ranges and descriptions are in :mod:`lutfuse_ros.settings.schema`, the
defaults in ``config/fuse.yaml``; this module only turns them into ``ParameterDescriptor``
objects, declares them on a node and reads the current values back.
"""

from __future__ import annotations

from typing import Any

from lutfuse_ros.settings.params_file import default_values
from lutfuse_ros.settings.schema import (BOOL, DOUBLE, DOUBLE_ARRAY, INTEGER, INTEGER_ARRAY,
                                         SPECS, STRING, ParamSpec)


def make_descriptor(spec: ParamSpec):
    """The ``rcl_interfaces/ParameterDescriptor`` of a spec (type, range, description)."""
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                    ParameterType)

    types = {STRING: ParameterType.PARAMETER_STRING, DOUBLE: ParameterType.PARAMETER_DOUBLE,
             INTEGER: ParameterType.PARAMETER_INTEGER, BOOL: ParameterType.PARAMETER_BOOL,
             DOUBLE_ARRAY: ParameterType.PARAMETER_DOUBLE_ARRAY,
             INTEGER_ARRAY: ParameterType.PARAMETER_INTEGER_ARRAY}
    descriptor = ParameterDescriptor(name=spec.name, type=types[spec.kind],
                                     description=spec.description,
                                     additional_constraints=spec.constraints())
    if spec.minimum is not None and spec.kind in (DOUBLE, DOUBLE_ARRAY):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)]
    elif spec.minimum is not None:
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum),
                                                 to_value=int(spec.maximum), step=1)]
    return descriptor


def declare_node_parameters(node) -> dict[str, str]:
    """Declare every parameter on ``node`` with its descriptor and packaged default.

    An override (params file, ``-p``) that the descriptor rejects (wrong type, out of range)
    does not abort the node: the parameter is declared with its default instead and the
    problem is returned, so that ``on_configure`` can fail naming it, and the user can set a
    valid value and configure again.

    Args:
        node: an ``rclpy`` node.

    Returns:
        Parameter name -> message, for each rejected override.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    problems = {}
    for name, default in default_values().items():
        descriptor = make_descriptor(SPECS[name])
        try:
            node.declare_parameter(name, default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            spec = SPECS[name]
            allowed = "; ".join(filter(None, (spec.kind, spec.constraints())))
            problems[name] = f"parameter '{name}' rejected: {error} (allowed: {allowed})"
            node.declare_parameter(name, default, make_descriptor(SPECS[name]),
                                   ignore_override=True)
    return problems


def node_parameter_values(node) -> dict[str, Any]:
    """Current values of every declared spec parameter, as plain Python values."""
    values = {}
    for name in SPECS:
        value = node.get_parameter(name).value
        values[name] = list(value) if SPECS[name].is_array else value
    return values

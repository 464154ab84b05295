"""Stand-in for the ROS message package ``composition_interfaces`` (not on PyPI).

``launch_ros.actions`` imports it for the composable-node actions only; ``Node`` and
``LifecycleNode``, which the package's launch file uses, never touch it. launch_support puts
this folder on the path only where the real package cannot be imported, so a test that
reached for composable nodes fails loudly instead of silently using this.
"""

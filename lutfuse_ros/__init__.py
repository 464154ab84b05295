"""lutfuse_ros: real-time infrared + visible image fusion for ROS 2.

The fusion engine (:mod:`lutfuse_ros.pipeline`, :mod:`lutfuse_ros.families` (the model
families as plug-ins), :mod:`lutfuse_ros.backends`) imports without ROS; :mod:`lutfuse_ros.ros`
holds the node.
"""

__version__ = "0.1.0"

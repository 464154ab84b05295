"""ROS-facing helpers of ``lutfuse_ros``: message conversions used by the fusion node."""

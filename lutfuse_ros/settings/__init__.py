"""The node's settings, declared once: schema, defaults file, parsed records, docs table.

* :mod:`~lutfuse_ros.settings.schema`: every parameter's name, type, range and meaning.
* :mod:`~lutfuse_ros.settings.params_file`: ``config/fuse.yaml`` (the defaults) and users'
  parameter files.
* :mod:`~lutfuse_ros.settings.node_settings`: validated records (:class:`NodeSettings`,
  :class:`SyncSettings` for the node, replay and training).
* :mod:`~lutfuse_ros.settings.docs_table`: the generated table of ``docs/ros_node.md``.

No module here imports ROS; :mod:`lutfuse_ros.ros.params` builds the descriptors.
"""

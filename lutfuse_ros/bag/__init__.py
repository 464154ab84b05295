"""Rosbag tools: build visible + thermal bags, read them, and replay them through the node.

* :mod:`~lutfuse_ros.bag.make` (``lutfuse make-bag``): a rosbag2 from image folders or videos;
* :mod:`~lutfuse_ros.bag.reader`: rosbag2 (sqlite3, mcap) and rosbag1 image topics as CDR;
* :mod:`~lutfuse_ros.bag.writer`: atomic rosbag2 output of image topics;
* :mod:`~lutfuse_ros.bag.replay` (``lutfuse replay``): play a bag through the fusion node,
  record ``fused/image`` and report rates, latency and fusion metrics.

Bags are read and written with ``rosbags`` (no ``rosbag2_py``); only replay needs ``rclpy``.
"""

"""Test and benchmark tooling of ``lutfuse_ros``: NOT part of the shipped package.

* :mod:`~lutfuse_testing.camera_traffic`: the synthetic camera (timed visible/thermal pairs,
  corruptions, compressed transports, CameraInfo) and the recorder of the node's outputs,
  as separate ROS processes (``python -m lutfuse_testing.camera_traffic publish|record``).
* :mod:`~lutfuse_testing.shm_segments`: Fast DDS shared-memory leftovers of killed processes.

The tests, the soak and the benchmarks import it from the checkout (the repository root on
``sys.path``/``PYTHONPATH``); ``setup.py`` packages only ``lutfuse_ros``, so neither the wheel
nor a colcon install contains it (``test/integration/test_packaging.py`` checks).
"""

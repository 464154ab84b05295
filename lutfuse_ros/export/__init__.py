"""Deployment exports: ONNX graphs, TensorRT engines and their cache.

Modules: :mod:`~lutfuse_ros.export.onnx_export` (artifact -> ONNX with the manifest inside),
:mod:`~lutfuse_ros.families.mmlut.export_ops` (TensorRT-native formulations of the 4-D LUT),
:mod:`~lutfuse_ros.export.tensorrt_ops` (the operator allow-list check),
:mod:`~lutfuse_ros.export.engine_cache` (engine keys, sidecars, stale detection) and
:mod:`~lutfuse_ros.export.tensorrt_build` (engine building; needs TensorRT).
"""

"""The MM-LUT family (LUT-Fuse, ICCV 2025): 4-D look-up table + context network.

``model.py`` (reference :class:`MMLUT`), ``context_net.py`` / ``reduced_context.py`` (the
official full-resolution and the package's reduced-resolution context networks),
``fast_kernel.py`` with ``fast_context.py``, ``fast_reduced_context.py``, ``fast_lattice.py``,
``fast_grid_lattice.py`` (fast CPU inference), ``export_ops.py`` (ONNX look-up graphs),
``baseline.py``, ``importer.py``, ``training_stage.py`` with ``quantise.py`` (distillation
and int8 quantisation). Registered in :data:`lutfuse_ros.families.FAMILIES`.
"""

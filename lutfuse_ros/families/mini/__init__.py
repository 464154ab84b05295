"""The mini-model family (MMDRFuse, ACM MM 2024): the 113-parameter two-layer CNN.

``model.py`` (reference :class:`MiniFusionNet`, with the package's frame-level variant),
``fast_kernel.py`` (fast CPU inference), ``baseline.py``, ``importer.py``,
``training_stage.py`` (digestible distillation, comprehensive loss, dynamic refresh).
Registered in :data:`lutfuse_ros.families.FAMILIES`.
"""

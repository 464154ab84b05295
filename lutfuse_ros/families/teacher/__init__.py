"""The fusion teacher family (the MM-Net / MMDRFuse teacher the students learn from).

``model.py`` (reference :class:`FusionTeacher`), ``importer.py`` (official MMDRFuse
teacher), ``training_stage.py`` (``lutfuse train teacher``). Registered in
:data:`lutfuse_ros.families.FAMILIES`.
"""

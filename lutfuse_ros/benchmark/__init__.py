"""Speed benchmarks of the fusion pipeline (``lutfuse bench``, ``benchmarks/``).

:func:`run_benchmark` times the full uint8 -> uint8 pipeline for every backend x model x
resolution together with each family's official-approach baseline (``baseline.py`` of each
family in :mod:`lutfuse_ros.families`);
:func:`write_reports` writes the JSON, Markdown and PNG reports.
"""

from lutfuse_ros.benchmark.report import (REPORT_FILES, machine_info, markdown_table,
                                          plot_results, write_reports)
from lutfuse_ros.benchmark.runner import (BASELINE_LABEL, DEFAULT_RESOLUTIONS, BackendSpec,
                                          CaseResult, benchmark_inputs, default_backend_specs,
                                          parse_resolution, run_benchmark)

__all__ = ["BASELINE_LABEL", "BackendSpec", "CaseResult", "DEFAULT_RESOLUTIONS",
           "REPORT_FILES", "benchmark_inputs", "default_backend_specs", "machine_info",
           "markdown_table", "parse_resolution", "plot_results", "run_benchmark", "write_reports"]

"""Fusion metrics of the infrared + visible image fusion field, and folder evaluation.

Gray images are numpy arrays of shape ``(H, W)`` with values 0..255; metrics comparing a fused
image with its sources take ``(fused, ir, vi)`` in that order. The conventions (SSIM and VIF
summed over both sources, MI in nats, EN in bits, legacy SSIM data range 2.0) follow the
CDDFuse / MMDRFuse reference evaluators, so values compare with published tables.
"""

from lutfuse_ros.metrics.fusion_metrics import (
    METRIC_NAMES,
    average_gradient,
    correlation_coefficient,
    evaluate_pair,
    mean_squared_error,
    peak_signal_to_noise_ratio,
    read_gray,
    spatial_frequency,
    standard_deviation,
    sum_of_correlations_of_differences,
)
from lutfuse_ros.metrics.information import entropy, mutual_information, mutual_information_pair
from lutfuse_ros.metrics.report import (
    AVERAGE_LABEL,
    MAX_LABEL,
    EvaluationReport,
    baseline_images,
    evaluate_baselines,
    evaluate_folder,
    to_json,
    to_markdown,
)
from lutfuse_ros.metrics.structural import (
    edge_preservation_qabf,
    ssim_pair,
    structural_similarity_sum,
    vif_pair,
    visual_information_fidelity,
)

__all__ = [
    "AVERAGE_LABEL",
    "MAX_LABEL",
    "METRIC_NAMES",
    "EvaluationReport",
    "average_gradient",
    "baseline_images",
    "correlation_coefficient",
    "edge_preservation_qabf",
    "entropy",
    "evaluate_baselines",
    "evaluate_folder",
    "evaluate_pair",
    "mean_squared_error",
    "mutual_information",
    "mutual_information_pair",
    "peak_signal_to_noise_ratio",
    "read_gray",
    "spatial_frequency",
    "ssim_pair",
    "standard_deviation",
    "structural_similarity_sum",
    "sum_of_correlations_of_differences",
    "to_json",
    "to_markdown",
    "vif_pair",
    "visual_information_fidelity",
]

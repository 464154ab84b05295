"""Dynamic refresh (MMDRFuse Sec. 3.3): the best historical outputs per training crop.

For every fixed crop the memory keeps the best output seen so far by SSIM
(``S = SSIM(O, IR) + SSIM(O, VIS)``, higher is better) and by GMSD
(``G = GMSD(O, IR) + GMSD(O, VIS)``, lower is better). Each step:

1. score the current outputs (:func:`score_outputs`);
2. :meth:`RefreshMemory.recall` the stored bests of the batch's crops;
3. compute the refresh loss against them, weighted per crop by the gaps
   ``gap_s = S_bs - S_cur`` and ``gap_g = G_cur - G_bg`` (0 where the current output is
   better, or where the crop has no history yet);
4. :meth:`RefreshMemory.update` with the current outputs, which replace the stored ones where
   they score better (strictly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lutfuse_ros.training.losses import feature_distance, gmsd, gradient_difference, ssim

#: SSIM window used for scoring (Gaussian, sigma 1.5, as the official code).
SCORE_SSIM_WINDOW = 11


@dataclass
class RefreshTargets:
    """What the memory holds for one batch.

    Attributes:
        best_ssim_outputs: ``(N, 1, h, w)`` O_bs (zeros where unknown).
        best_ssim_scores: ``(N,)`` S_bs (-inf where unknown).
        best_gmsd_outputs: ``(N, 1, h, w)`` O_bg.
        best_gmsd_scores: ``(N,)`` G_bg (+inf where unknown).
    """

    best_ssim_outputs: torch.Tensor
    best_ssim_scores: torch.Tensor
    best_gmsd_outputs: torch.Tensor
    best_gmsd_scores: torch.Tensor


class RefreshMemory:
    """Per-crop best outputs by SSIM and by GMSD.

    Args:
        num_samples: number of fixed crops.
        crop_size: crop side in pixels.
        storage_dtype: dtype of the stored outputs (float16 halves the memory).
    """

    def __init__(self, num_samples: int, crop_size: int,
                 storage_dtype: torch.dtype = torch.float16) -> None:
        shape = (num_samples, 1, crop_size, crop_size)
        self.best_ssim_outputs = torch.zeros(shape, dtype=storage_dtype)
        self.best_gmsd_outputs = torch.zeros(shape, dtype=storage_dtype)
        self.best_ssim_scores = torch.full((num_samples,), -float("inf"))
        self.best_gmsd_scores = torch.full((num_samples,), float("inf"))

    def recall(self, indices: torch.Tensor, device: torch.device | None = None) -> RefreshTargets:
        """Stored bests of the crops ``indices`` (``(N,)`` int64)."""
        indices = indices.cpu()
        device = device or torch.device("cpu")
        return RefreshTargets(
            self.best_ssim_outputs[indices].float().to(device),
            self.best_ssim_scores[indices].to(device),
            self.best_gmsd_outputs[indices].float().to(device),
            self.best_gmsd_scores[indices].to(device))

    def update(self, indices: torch.Tensor, outputs: torch.Tensor, ssim_scores: torch.Tensor,
               gmsd_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the stored outputs that the current ones beat.

        Args:
            indices: ``(N,)`` crop indices.
            outputs: ``(N, 1, h, w)`` current outputs (detached).
            ssim_scores: ``(N,)`` S_cur.
            gmsd_scores: ``(N,)`` G_cur.

        Returns:
            ``(replaced_by_ssim, replaced_by_gmsd)`` boolean ``(N,)`` masks.
        """
        indices = indices.cpu()
        outputs = outputs.detach().cpu().to(self.best_ssim_outputs.dtype)
        ssim_scores, gmsd_scores = ssim_scores.detach().cpu(), gmsd_scores.detach().cpu()
        better_ssim = ssim_scores > self.best_ssim_scores[indices]
        better_gmsd = gmsd_scores < self.best_gmsd_scores[indices]
        chosen = indices[better_ssim]
        self.best_ssim_outputs[chosen] = outputs[better_ssim]
        self.best_ssim_scores[chosen] = ssim_scores[better_ssim].float()
        chosen = indices[better_gmsd]
        self.best_gmsd_outputs[chosen] = outputs[better_gmsd]
        self.best_gmsd_scores[chosen] = gmsd_scores[better_gmsd].float()
        return better_ssim, better_gmsd

    @property
    def known(self) -> int:
        """Crops with a stored history."""
        return int(torch.isfinite(self.best_ssim_scores).sum())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors for checkpoints."""
        return {"best_ssim_outputs": self.best_ssim_outputs,
                "best_gmsd_outputs": self.best_gmsd_outputs,
                "best_ssim_scores": self.best_ssim_scores,
                "best_gmsd_scores": self.best_gmsd_scores}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict` (shapes must match)."""
        for name, value in state.items():
            current = getattr(self, name)
            if current.shape != value.shape:
                raise ValueError(f"refresh memory {name} has shape {tuple(value.shape)} in the "
                                 f"checkpoint but {tuple(current.shape)} in this run")
            setattr(self, name, value.to(current.dtype))


def score_outputs(outputs: torch.Tensor, infrared: torch.Tensor, visible: torch.Tensor,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-crop scores ``(S, G)``, each ``(N,)``, without gradient.

    ``S = SSIM(O, IR) + SSIM(O, VIS)`` (Gaussian window 11, data range 1) and
    ``G = GMSD(O, IR) + GMSD(O, VIS)``.
    """
    with torch.no_grad():
        s = (ssim(outputs, infrared, SCORE_SSIM_WINDOW, per_sample=True)
             + ssim(outputs, visible, SCORE_SSIM_WINDOW, per_sample=True))
        g = gmsd(outputs, infrared) + gmsd(outputs, visible)
    return s, g


def refresh_loss(outputs: torch.Tensor, targets: RefreshTargets, ssim_scores: torch.Tensor,
                 gmsd_scores: torch.Tensor, vgg=None,
                 output_features: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
    """``mean_i(gap_s,i L_s,i + gap_g,i L_g,i)`` (MMDRFuse Eqs. 9-12).

    ``L_s`` = perceptual distance at depths 4-5 (when a VGG is given) + L1 to O_bs;
    ``L_g`` = perceptual distance at depths 1-3 + squared gradient difference to O_bg.

    Args:
        outputs: ``(N, 1, h, w)`` current outputs (with gradient).
        targets: the memory's bests for these crops (before this step's update).
        ssim_scores: ``(N,)`` S_cur.
        gmsd_scores: ``(N,)`` G_cur.
        vgg: optional :class:`~lutfuse_ros.training.losses.VGG19Features`.
        output_features: the VGG features of ``outputs`` if already computed.

    Returns:
        ``(loss, info)``: the scalar loss and mean gaps for logging.
    """
    known_s = torch.isfinite(targets.best_ssim_scores)
    known_g = torch.isfinite(targets.best_gmsd_scores)
    zeros = torch.zeros_like(ssim_scores)
    gap_s = torch.where(known_s, targets.best_ssim_scores - ssim_scores, zeros)
    gap_g = torch.where(known_g, gmsd_scores - targets.best_gmsd_scores, zeros)
    gap_s, gap_g = gap_s.clamp_min(0.0).detach(), gap_g.clamp_min(0.0).detach()
    loss_s = (outputs - targets.best_ssim_outputs).abs().flatten(1).mean(1)
    loss_g = gradient_difference(outputs, targets.best_gmsd_outputs)
    if vgg is not None:
        features = output_features if output_features is not None else vgg(outputs)
        with torch.no_grad():
            features_bs = vgg(targets.best_ssim_outputs)
            features_bg = vgg(targets.best_gmsd_outputs)
        loss_s = loss_s + feature_distance(features, features_bs, (4, 5))
        loss_g = loss_g + feature_distance(features, features_bg, (1, 2, 3))
    loss = (gap_s * loss_s + gap_g * loss_g).mean()
    return loss, {"gap_ssim": float(gap_s.mean()), "gap_gmsd": float(gap_g.mean())}

"""Digestible distillation (MMDRFuse Sec. 3.1): attention maps of features and outputs."""

from __future__ import annotations

import torch


def attention_map(tensor: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Channel-sum attention map, L2-normalised per sample.

    ``F(X) = sum_c X_c``, then ``vec(F(X)) / ||vec(F(X))||_2``.

    Args:
        tensor: ``(N, C, H, W)``.
        eps: guards the division for an all-zero map.

    Returns:
        ``(N, H * W)`` unit-norm rows (all-zero rows stay zero).
    """
    summed = tensor.sum(dim=1).flatten(1)
    return summed / summed.norm(dim=1, keepdim=True).clamp_min(eps)


def digestible_distillation_loss(student: list[torch.Tensor], teacher: list[torch.Tensor],
                                 ) -> torch.Tensor:
    """Eq. 1 of MMDRFuse: ``1/2 sum_i || A(T_i) - A(S_i) ||_2``, averaged over the batch.

    ``i`` runs over the aligned pairs: the 4-channel features and the 1-channel outputs (pass
    only the outputs when the teacher has no features; the 1/2 stays, as in the paper).

    Args:
        student: student tensors ``(N, C_i, H, W)``.
        teacher: teacher tensors of the same shapes (detached).

    Returns:
        Scalar loss, 0 when every attention map matches (the maps are scale-invariant).
    """
    if len(student) != len(teacher):
        raise ValueError(f"distillation needs as many student as teacher tensors, got "
                         f"{len(student)} and {len(teacher)}")
    total = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        if s.shape[0] != t.shape[0] or s.shape[-2:] != t.shape[-2:]:
            raise ValueError(f"student {tuple(s.shape)} and teacher {tuple(t.shape)} differ in "
                             "batch or spatial size")
        difference = attention_map(s) - attention_map(t.detach())
        total = total + torch.sqrt((difference ** 2).sum(1) + 1e-12).mean()
    return 0.5 * total

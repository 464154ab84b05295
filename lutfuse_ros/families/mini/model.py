"""The MMDRFuse mini-model: a 113-parameter two-layer CNN (ACM MM 2024).

Module names mirror the official ``student.model`` state dict (``conv1.1``, ``conv2.1``).

Architecture ``frame_level: true`` (the package's own extension, not in the paper) adds a
**frame-level term**: a learned linear map of the frame's two input means (infrared, luma)
to an offset of every hidden pre-activation and of the output pre-activation,
``2 * (hidden + 1)`` weights (10 for ``hidden=4``). A 3x3 network sees only a 3x3
neighbourhood, so without it the model cannot tell a dark frame from a bright one; with it,
it can follow fusion rules centred on the frame's mean brightness (docs/training.md). The
means are those of the image the model is given (the whole frame at inference, the crop in
training), and they are per frame, so the output stays a smooth function of the inputs.

Architecture ``output: linear`` (also the package's own) drops the final tanh: the output
pre-activation is the fused luminance, clamped to [0, 1] by the artifact's output mapping.
The tanh compresses bright outputs (``tanh(1) = 0.76``: reaching 0.95 takes a pre-activation
of 1.83), which a per-pixel network of four ReLU units can only approximate; without it the
package's classical rule ``T = Y + I / 2 + relu(I - Y) / 2 - m / 4`` (``w = 0.5, g = 1``) is
exactly three ReLU units and a frame-level offset.
"""

from __future__ import annotations

import torch
from torch import nn

from lutfuse_ros.families.features import quantise_luma, rgb_to_luma


#: Output activations: ``tanh`` (the paper's) or ``linear`` (package; clamped by the mapping).
OUTPUTS = ("tanh", "linear")


class MiniFusionNet(nn.Module):
    """reflect-pad, conv3x3 2->H, ReLU; reflect-pad, conv3x3 H->1, tanh.

    With ``hidden=4`` the network has 4*2*9 + 4 + 1*4*9 + 1 = 113 parameters.

    Args:
        hidden: width of the hidden layer (official: 4).
        quantise_input: round the visible luminance to 8 bits first, as the official model
            saw it (it was trained and tested on uint8 gray images).
        frame_level: add the frame-level term (see the module doc); off for the official
            architecture.
        output: ``tanh`` (the official architecture) or ``linear`` (see the module doc).
    """

    family = "mini"
    default_output_mapping = "clamp"

    def __init__(self, hidden: int = 4, quantise_input: bool = True,
                 frame_level: bool = False, output: str = "tanh") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.hidden = hidden
        self.quantise_input = quantise_input
        self.frame_level = bool(frame_level)
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(2, hidden, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(hidden, 1, 3))
        if self.frame_level:
            #: ``offsets = level(means)``: ``(N, 2)`` (infrared, luma) -> ``(N, hidden + 1)``
            self.level = nn.Linear(2, hidden + 1, bias=False)
            nn.init.zeros_(self.level.weight)

    def architecture(self) -> dict:
        """Constructor arguments, stored in the artifact manifest."""
        architecture = {"hidden": self.hidden, "quantise_input": self.quantise_input}
        if self.frame_level:
            architecture["frame_level"] = True
        if self.output != "tanh":
            architecture["output"] = self.output
        return architecture

    def forward_features(self, visible_rgb: torch.Tensor, infrared: torch.Tensor,
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network and also return its hidden features (for distillation).

        Args:
            visible_rgb: ``(N, 3, H, W)`` RGB on [0, 1].
            infrared: ``(N, 1, H, W)`` on [0, 1].

        Returns:
            ``(features, output)``: ``(N, hidden, H, W)`` after ReLU and ``(N, 1, H, W)``
            output (tanh: on [-1, 1]; linear: unbounded, clamped by the output mapping).
        """
        luma = rgb_to_luma(visible_rgb)
        if self.quantise_input:
            luma = quantise_luma(luma)
        inputs = torch.cat([infrared, luma], dim=1)
        hidden = self.conv1(inputs)
        if not self.frame_level:
            features = torch.relu(hidden)
            return features, self._activate(self.conv2(features))
        offsets = self.level(inputs.mean(dim=(2, 3)))[:, :, None, None]   # (N, hidden + 1, 1, 1)
        features = torch.relu(hidden + offsets[:, :self.hidden])
        return features, self._activate(self.conv2(features) + offsets[:, self.hidden:])

    def _activate(self, pre_activation: torch.Tensor) -> torch.Tensor:
        return torch.tanh(pre_activation) if self.output == "tanh" else pre_activation

    def forward(self, visible_rgb: torch.Tensor, infrared: torch.Tensor) -> torch.Tensor:
        """Fuse a batch; returns ``(N, 1, H, W)`` raw output (clamp to [0, 1] for display)."""
        return self.forward_features(visible_rgb, infrared)[1]

    @torch.no_grad()
    def fill_analytic(self) -> None:
        """Set hand-made weights computing ``max(infrared, luma)`` (tanh of it for the tanh output).

        Hidden channel 0 is ``relu(luma)``, channel 1 ``relu(infrared - luma)``, their sum the
        maximum (the frame-level term, if any, starts at zero). A starting point for shipped
        defaults before training, not a trained model.
        """
        if self.frame_level:
            self.level.weight.zero_()
        self.conv1[1].weight.zero_()
        self.conv1[1].bias.zero_()
        self.conv2[1].weight.zero_()
        self.conv2[1].bias.zero_()
        self.conv1[1].weight[0, 1, 1, 1] = 1.0
        self.conv1[1].weight[1, 0, 1, 1] = 1.0
        self.conv1[1].weight[1, 1, 1, 1] = -1.0
        self.conv2[1].weight[0, 0, 1, 1] = 1.0
        self.conv2[1].weight[0, 1, 1, 1] = 1.0

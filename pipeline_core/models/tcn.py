"""TCN direction model: a few dilated causal convolutions with residual connections."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from pipeline_core.errors import ConfigError
from pipeline_core.constants import N_CLASSES
from pipeline_core.models.torch_base import TORCH_DEFAULT_PARAMS, ProbaNet, TorchSequenceModel

TCN_DEFAULT_PARAMS: dict[str, Any] = {
    "channels": 32,
    "kernel_size": 3,
    "n_layers": None,
    "dropout": 0.1,
    **TORCH_DEFAULT_PARAMS,
}


def causal_receptive_field(kernel_size: int, n_layers: int) -> int:
    """Bars seen by stacked causal convolutions with dilations 1, 2, 4, ..."""
    return 1 + (kernel_size - 1) * (2**n_layers - 1)


def layers_to_cover(sequence_length: int, kernel_size: int) -> int:
    """The fewest layers whose receptive field covers the whole window."""
    n_layers = 1
    while causal_receptive_field(kernel_size, n_layers) < sequence_length:
        n_layers += 1
    return n_layers


class TCNNet(ProbaNet):
    """1x1 input projection, residual dilated causal conv blocks, head on the last bar."""

    def __init__(
        self, n_features: int, channels: int, kernel_size: int, n_layers: int,
        dropout: float, clip_value: float, chunk_size: int,
    ) -> None:
        super().__init__(clip_value, chunk_size)
        self.kernel_size = kernel_size
        self.project = nn.Conv1d(n_features, channels, kernel_size=1)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=2**i) for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, N_CLASSES)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x.transpose(1, 2))  # (b, channels, sequence_length)
        for conv in self.convs:
            left = (self.kernel_size - 1) * conv.dilation[0]  # pad the past only: causal
            h = h + self.dropout(F.relu(conv(F.pad(h, (left, 0)))))
        return self.head(h[:, :, -1])


class TCNModel(TorchSequenceModel):
    """TCN over (n, sequence_length, n_features) windows.

    Defaults: 32 channels, kernel 3, dilations 1, 2, 4, ...; `n_layers=None` picks the
    fewest layers whose receptive field covers the sequence (3 for 10 bars, 5 for 60).
    """

    family: ClassVar[str] = "tcn"
    default_params: ClassVar[dict[str, Any]] = TCN_DEFAULT_PARAMS

    def _architecture(self, n_features: int, sequence_length: int) -> dict[str, Any]:
        p = self.params
        kernel_size = int(p["kernel_size"])
        if kernel_size < 2:
            raise ConfigError(f"kernel_size={kernel_size} is too small: expected >= 2.")
        n_layers = p["n_layers"] or layers_to_cover(sequence_length, kernel_size)
        return {
            "n_features": n_features,
            "channels": int(p["channels"]),
            "kernel_size": kernel_size,
            "n_layers": int(n_layers),
            "dropout": float(p["dropout"]),
            "clip_value": float(p["clip_value"]),
            "chunk_size": int(p["chunk_size"]),
        }

    def _build_net(self, architecture: dict[str, Any]) -> ProbaNet:
        return TCNNet(**architecture)

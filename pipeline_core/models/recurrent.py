"""LSTM and GRU direction models: one small recurrent layer and a linear head."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from pipeline_core.constants import N_CLASSES
from pipeline_core.models.torch_base import TORCH_DEFAULT_PARAMS, ProbaNet, TorchSequenceModel

RECURRENT_DEFAULT_PARAMS: dict[str, Any] = {
    "hidden_size": 32,
    "num_layers": 1,
    "dropout": 0.0,
    **TORCH_DEFAULT_PARAMS,
}
_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(ProbaNet):
    """Recurrent layer(s) over the window; the last hidden state feeds a linear head."""

    def __init__(
        self, cell: str, n_features: int, hidden_size: int, num_layers: int,
        dropout: float, clip_value: float, chunk_size: int,
    ) -> None:
        super().__init__(clip_value, chunk_size)
        self.rnn = _CELLS[cell](
            n_features, hidden_size, num_layers=num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, N_CLASSES)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.rnn(x)
        if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
            hidden = hidden[0]
        return self.head(self.dropout(hidden[-1]))


class _RecurrentModel(TorchSequenceModel):
    default_params: ClassVar[dict[str, Any]] = RECURRENT_DEFAULT_PARAMS

    def _architecture(self, n_features: int, sequence_length: int) -> dict[str, Any]:
        p = self.params
        return {
            "cell": self.family,
            "n_features": n_features,
            "hidden_size": int(p["hidden_size"]),
            "num_layers": int(p["num_layers"]),
            "dropout": float(p["dropout"]),
            "clip_value": float(p["clip_value"]),
            "chunk_size": int(p["chunk_size"]),
        }

    def _build_net(self, architecture: dict[str, Any]) -> ProbaNet:
        return RecurrentNet(**architecture)


class LSTMModel(_RecurrentModel):
    """LSTM over (n, sequence_length, n_features) windows (defaults: 1 layer, 32 units)."""

    family: ClassVar[str] = "lstm"


class GRUModel(_RecurrentModel):
    """GRU over (n, sequence_length, n_features) windows (defaults: 1 layer, 32 units)."""

    family: ClassVar[str] = "gru"

"""What the torch sequence families share: the probability network, training, persistence.

Numerics that do not depend on batching: CPU matrix kernels may sum in a different
order for a different number of rows, so a row's probabilities could change with the
rows scored beside it. `ProbaNet.forward` therefore always evaluates fixed-size chunks
of `chunk_size` rows, zero-padding the last one. A row's result is then the same
whether it is scored alone, in a partition or in a backfill (which the lookahead and
parity checks compare bit for bit), and `native(x)` equals `predict_proba(x)`.

Inputs are clamped to [-clip_value, clip_value] inside the network (the pipeline
passes RobustScaler-scaled features, where |x| > 10 is a rare outlier that would
otherwise saturate the recurrent gates); the clamp is part of the saved architecture.

Weights are stored as `weights.npz` (one float32 array per `state_dict` entry) and read
with `np.load(allow_pickle=False)`: no pickle at all, not even torch's restricted one.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline_core.errors import ConfigError, DataValidationError
from pipeline_core.constants import N_CLASSES
from pipeline_core.models.base import BaseDirectionModel, balanced_class_weights, scoring_threads

WEIGHTS_FILE = "weights.npz"
GRAD_CLIP_NORM = 1.0
MIN_IMPROVEMENT = 1e-4

TORCH_DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 2e-3,
    "weight_decay": 0.0,
    "batch_size": 256,
    "max_epochs": 20,
    "patience": 4,
    "max_train_sequences": 50_000,
    "max_val_sequences": 20_000,
    "class_weight": "balanced",
    "clip_value": 10.0,
    "chunk_size": 256,
    "num_threads": None,
    "seed": 0,
}


class ProbaNet(nn.Module):
    """`logits(x)` for training; `forward(x)` gives probabilities in fixed-size chunks."""

    def __init__(self, clip_value: float, chunk_size: int) -> None:
        super().__init__()
        self.clip_value = float(clip_value)
        self.chunk_size = int(chunk_size)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (b, 3) for float32 x (b, sequence_length, n_features)."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._logits(x.clamp(-self.clip_value, self.clip_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 probabilities (n, 3) for x (n, sequence_length, n_features)."""
        size = self.chunk_size
        parts = []
        for start in range(0, x.shape[0], size):
            chunk = x[start : start + size]
            rows = chunk.shape[0]
            if rows < size:
                padding = chunk.new_zeros((size - rows, *chunk.shape[1:]))
                chunk = torch.cat([chunk, padding])
            parts.append(torch.softmax(self.logits(chunk), dim=-1)[:rows])
        if not parts:
            return x.new_empty((0, N_CLASSES))
        return torch.cat(parts)


class TorchSequenceModel(BaseDirectionModel):
    """Shared fit / predict / save / load of the torch families.

    Subclasses give `_architecture(n_features, sequence_length) -> dict` (JSON; saved in
    config.json) and `_build_net(architecture) -> ProbaNet`. `native` is the
    `nn.Module` in eval mode: `native(torch.from_numpy(X))` returns float32 (n, 3)
    probabilities equal to `predict_proba(X)`.

    Training: fixed seed (torch RNG forked, so the caller's RNG state is untouched),
    deterministic algorithms, Adam, cross-entropy with balanced class weights, gradient
    norm clipped at 1, early stopping on validation loss with `patience`, at most
    `max_train_sequences` / `max_val_sequences` drawn at random with the seed.
    """

    is_sequence: ClassVar[bool] = True
    library_name: ClassVar[str] = "torch"
    native_files: ClassVar[tuple[str, ...]] = (WEIGHTS_FILE,)

    @abstractmethod
    def _architecture(self, n_features: int, sequence_length: int) -> dict[str, Any]:
        """Architecture hyperparameters for the data shape (JSON-serializable)."""

    @abstractmethod
    def _build_net(self, architecture: dict[str, Any]) -> ProbaNet:
        """A freshly initialised network."""

    def _fit_native(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
    ) -> tuple[ProbaNet, dict[str, Any]]:
        p = self.params
        architecture = self._architecture(int(X.shape[2]), int(X.shape[1]))
        with _torch_runtime(p["num_threads"], deterministic=True):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(p["seed"])
                net = self._build_net(architecture)
                history = _train(net, X, y, X_val, y_val, p)
        return net.eval(), {"architecture": architecture, **history}

    def _predict_native(self, X: np.ndarray) -> np.ndarray:
        net: ProbaNet = self.model_
        out = np.empty((X.shape[0], N_CLASSES), dtype=np.float64)
        threads = scoring_threads(X.shape[0], self.params["num_threads"])
        with _torch_runtime(threads), torch.inference_mode():
            for start in range(0, X.shape[0], net.chunk_size):
                chunk = _batch_tensor(X, slice(start, start + net.chunk_size))
                _check_finite(chunk, start)
                out[start : start + chunk.shape[0]] = net(chunk).numpy()
        return out

    def _save_native(self, folder: Path) -> None:
        arrays = {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        np.savez(folder / WEIGHTS_FILE, **arrays)

    def _load_native(self, folder: Path) -> ProbaNet:
        net = self._build_net(self.state_["architecture"])
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as stored:
            state = {name: torch.from_numpy(stored[name]) for name in stored.files}
        net.load_state_dict(state, strict=True)
        return net.eval()


@contextmanager
def _torch_runtime(num_threads: int | None, deterministic: bool = False) -> Iterator[None]:
    """Set torch threads / deterministic mode for a block, then restore them."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if num_threads and num_threads != previous_threads:
        torch.set_num_threads(int(num_threads))
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous_threads:
            torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


def _batch_tensor(X: np.ndarray, index: slice | np.ndarray) -> torch.Tensor:
    """X[index] as a contiguous float32 tensor: shared with X where it already is one (the
    windows `ModelInputs.run` gathers), else a copy (X may be a read-only strided view)."""
    batch = X[index]
    if batch.dtype == np.float32 and batch.flags.c_contiguous and batch.flags.writeable:
        return torch.from_numpy(batch)
    return torch.from_numpy(np.array(batch, dtype=np.float32, order="C", copy=True))


def _check_finite(chunk: torch.Tensor, rows: int | np.ndarray, name: str = "X") -> None:
    """Raise if a chunk holds NaN/inf; `rows`: the chunk's first row, or its row indices.
    A finite sum proves every value finite at a seventh of `isfinite`'s cost; a sum that is
    not (NaN/inf inside, or finite values overflowing) is settled value by value."""
    if bool(torch.isfinite(chunk.sum())):
        return
    finite = torch.isfinite(chunk).flatten(1).all(dim=1)
    if bool(finite.all()):
        return
    position = int(torch.nonzero(~finite)[0, 0])
    first = rows + position if isinstance(rows, int) else int(rows[position])
    raise DataValidationError(
        f"{name} has non-finite values (NaN or inf) in sequence {first}: sequence models "
        "need finite scaled features. Drop or fill the warm-up rows before scoring."
    )


def _train(
    net: ProbaNet, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
    p: dict[str, Any],
) -> dict[str, Any]:
    """Train in place with early stopping; leave the best weights loaded."""
    rng = np.random.default_rng(p["seed"])
    train_idx = _subsample(len(y), p["max_train_sequences"], rng)
    val_idx = _subsample(len(y_val), p["max_val_sequences"], rng)
    loss_fn = nn.CrossEntropyLoss(weight=_class_weight_tensor(y[train_idx], p["class_weight"]))
    optimizer = torch.optim.Adam(net.parameters(), lr=p["learning_rate"],
                                 weight_decay=p["weight_decay"])
    best_loss, best_state, best_epoch, val_losses = np.inf, None, -1, []
    for epoch in range(p["max_epochs"]):
        _train_epoch(net, X, y, rng.permutation(train_idx), p["batch_size"], loss_fn, optimizer)
        val_losses.append(_validation_loss(net, X_val, y_val, val_idx, loss_fn))
        if val_losses[-1] < best_loss - MIN_IMPROVEMENT:
            best_loss, best_epoch = val_losses[-1], epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= p["patience"]:
            break
    net.load_state_dict(best_state)
    return {"best_epoch": best_epoch, "val_losses": [round(v, 6) for v in val_losses],
            "n_train_sequences": int(len(train_idx))}


def _train_epoch(
    net: ProbaNet, X: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
    loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
) -> None:
    """One pass over `order`, copying each mini-batch out of X (which may be a view)."""
    net.train()
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        xb = _batch_tensor(X, batch)
        _check_finite(xb, batch, "X")
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net.logits(xb), torch.from_numpy(y[batch]))
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP_NORM)
        optimizer.step()


def _validation_loss(
    net: ProbaNet, X: np.ndarray, y: np.ndarray, idx: np.ndarray, loss_fn: nn.Module
) -> float:
    net.eval()
    logits = []
    with torch.inference_mode():
        for start in range(0, len(idx), net.chunk_size):
            batch = idx[start : start + net.chunk_size]
            xb = _batch_tensor(X, batch)
            _check_finite(xb, batch, "X_val")
            logits.append(net.logits(xb))
        return float(loss_fn(torch.cat(logits), torch.from_numpy(y[idx])))


def _subsample(n: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """All indices, or `cap` of them drawn without replacement (kept in time order)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=int(cap), replace=False))


def _class_weight_tensor(y: np.ndarray, class_weight: str | None) -> torch.Tensor:
    if class_weight is None:
        return torch.ones(N_CLASSES)
    if class_weight != "balanced":
        raise ConfigError(
            f"class_weight={class_weight!r} is not supported: expected 'balanced' or None."
        )
    return torch.from_numpy(balanced_class_weights(y).astype(np.float32))

"""The constants every module shares, in one place: classes, probability columns, horizons,
and the one default-horizon rule."""

from collections.abc import Sequence

from pipeline_core.errors import ConfigError

CLASSES: tuple[int, ...] = (-1, 0, 1)  # labels: down, flat, up; probability columns follow this order
N_CLASSES = len(CLASSES)
CLASS_NAMES = {-1: "down", 0: "flat", 1: "up"}
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"prob_{CLASS_NAMES[c]}" for c in CLASSES)
HORIZONS: tuple[int, ...] = (5, 10, 15, 20)  # bars ahead a label looks; the scoring partitions' horizons


def horizon_or_longest(horizon: int | None, trained: Sequence[int]) -> int:
    """The horizon an operation on one horizon uses: the one asked for, which must be
    trained, or the longest trained one when none is asked for. (Operations that can
    return several horizons, like `predict` and batch scoring, take them all instead.)"""
    if horizon is None:
        return max(trained)
    if horizon not in trained:
        raise ConfigError(f"Horizon {horizon} is not trained: the bundle scores {sorted(trained)}.")
    return int(horizon)

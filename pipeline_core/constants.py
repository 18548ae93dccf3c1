"""The constants every module shares, in one place: classes, probability columns, horizons."""

CLASSES: tuple[int, ...] = (-1, 0, 1)  # labels: down, flat, up; probability columns follow this order
N_CLASSES = len(CLASSES)
CLASS_NAMES = {-1: "down", 0: "flat", 1: "up"}
PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"prob_{CLASS_NAMES[c]}" for c in CLASSES)
HORIZONS: tuple[int, ...] = (5, 10, 15, 20)  # bars ahead a label looks; the scoring partitions' horizons

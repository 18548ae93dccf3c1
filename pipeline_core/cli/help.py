"""The help format and argument types every sub-command uses."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help, then "(required)" or its real default; nothing for a None or False default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return f"{text} (required)"
        unset = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        if not unset and "default" not in text:
            default = " ".join(map(str, action.default)) if isinstance(action.default, list) else action.default
            return f"{text} (default: {default})"
        return text


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _float_in(text, 0.0, float("inf"), "a number >= 0")


def unit_float(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    return _float_in(text, 0.0, 1.0, "a number in [0, 1]")


def _float_in(text: str, low: float, high: float, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not low <= value <= high or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value

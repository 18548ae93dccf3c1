"""The README's bash blocks, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def bash_blocks() -> list[list[str]]:
    """The README's bash blocks, each as its commands (continuations joined, comments cut)."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    return [
        [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
        for block in blocks
    ]

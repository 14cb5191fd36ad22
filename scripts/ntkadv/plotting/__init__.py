"""Figures of every stage (matplotlib / seaborn; no jax, no file I/O).

Modules: `attacks`, `transfer`, `features`, `dynamics`. Functions take arrays or
pandas tables and return a matplotlib Figure; callers save it with
``bbox_inches="tight"`` so that nothing drawn outside the axes grid is clipped.
"""

from __future__ import annotations

import textwrap


def wrap_title(text: str, width_in: float, fontsize: float) -> str:
    """`text` broken into lines that fit `width_in` inches at `fontsize` points.

    Uses an average glyph width of 0.55 em (DejaVu Sans), so a line holds about
    ``72 * width_in / (0.55 * fontsize)`` characters; existing line breaks are kept.
    """
    chars = max(20, int(72 * width_in / (0.55 * fontsize)))
    return "\n".join(
        textwrap.fill(line, chars) if line else line for line in text.split("\n")
    )

"""Figures of every stage (matplotlib / seaborn; no jax).

Modules: `attacks`, `transfer`, `features`, `dynamics`. The drawing functions take
arrays or pandas tables and return a matplotlib Figure (no file I/O). Each module
ends with the tasks of its stage's figure rules, ``plot_<figure>(inputs, outputs,
settings, ids, log)`` (the entry convention of scripts/_common.call): a task reads
the rule's inputs (`ntkadv.h5io`, pandas), draws with the functions above it and
saves with `save_figure`.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any


def wrap_title(text: str, width_in: float, fontsize: float) -> str:
    """`text` broken into lines that fit `width_in` inches at `fontsize` points.

    Uses an average glyph width of 0.55 em (DejaVu Sans), so a line holds about
    ``72 * width_in / (0.55 * fontsize)`` characters; existing line breaks are kept.
    """
    chars = max(20, int(72 * width_in / (0.55 * fontsize)))
    return "\n".join(
        textwrap.fill(line, chars) if line else line for line in text.split("\n")
    )


def save_figure(fig: Any, path: str, log: logging.Logger, dpi: int = 150) -> None:
    """Write `fig` to `path` with ``bbox_inches="tight"`` (nothing drawn outside the
    axes grid is clipped) and log it."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    log.info("wrote %s", path)

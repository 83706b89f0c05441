"""PNG plots with matplotlib (headless Agg), from CSV rows (strings)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .tables import backend_cell, case_cell  # noqa: E402

Rows = Sequence[Mapping[str, str]]


def number(value) -> float:
    """A CSV cell as a float; NaN when empty."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _grid(rows: Rows, column: str):
    """Cases (family [size]) × backends matrix of ``column``, in the rows' order."""
    cases = list(dict.fromkeys(case_cell(r) for r in rows))
    backends = list(dict.fromkeys(backend_cell(r) for r in rows))
    values = [[math.nan] * len(backends) for _ in cases]
    for r in rows:
        if r.get("status") == "ok":
            values[cases.index(case_cell(r))][backends.index(backend_cell(r))] = \
                number(r.get(column))
    return cases, backends, values


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_omega(rows: Rows, path: Path) -> Path:
    """ω = T(gradient)/T(f) per case and backend: grouped horizontal bars, log axis."""
    cases, backends, values = _grid(rows, "omega")
    height = 0.8 / max(len(backends), 1)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(cases) * max(1, len(backends) / 2) + 1.5))
    for j, backend in enumerate(backends):
        positions = [i + (j - (len(backends) - 1) / 2) * height for i in range(len(cases))]
        ax.barh(positions, [v[j] for v in values], height=height, label=backend)
    ax.set_yticks(range(len(cases)), cases)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.axvline(4.0, color="grey", lw=0.8, ls="--")
    ax.text(4.0, -0.7, " reverse-mode bound ≈ 4", fontsize=8, color="grey")
    ax.set_xlabel("ω = time of one gradient / time of one f evaluation (log scale)")
    ax.set_title("Cost of a gradient relative to the function")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    return save(fig, path)


def plot_digits(rows: Rows, path: Path) -> Path:
    """Correct digits per case and backend as an annotated heat map."""
    cases, backends, values = _grid(rows, "digits")
    fig, ax = plt.subplots(figsize=(1.3 * len(backends) + 3, 0.38 * len(cases) + 1.5))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=16, aspect="auto")
    ax.set_xticks(range(len(backends)), backends, rotation=30, ha="right")
    ax.set_yticks(range(len(cases)), cases)
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            text = "–" if math.isnan(value) else f"{value:.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if math.isnan(value) or value < 9 else "black")
    fig.colorbar(image, ax=ax, label="correct digits (−log10 max relative error)")
    ax.set_title("Accuracy against the 50-digit reference")
    return save(fig, path)

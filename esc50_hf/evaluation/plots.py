"""Plots as files: what every report and model folder saves its figures with."""

import io
from pathlib import Path
from typing import Any


def save_compact_png(figure: Any, path: Path, dpi: int = 100, **savefig: Any) -> None:
    """A plot as a 256-colour PNG: a third of the size of matplotlib's RGBA file, which keeps the model folder small.
    `savefig` goes to matplotlib's `savefig` (e.g. `bbox_inches="tight"`)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, **savefig)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(256).save(path, format="PNG", optimize=True)


__all__ = ["save_compact_png"]

"""A toy-face image folder on disk: :func:`write_dataset` renders one with a ``labels.csv``, and
:func:`add_bad_files` drops the usual troublemakers of a scraped folder into it (for the loaders' tests)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, List

import numpy as np
from PIL import Image

from ..labels import EMOTIONS
from .faces import INTENSITY_RANGE, render, sample_identity

__all__ = ["write_dataset", "add_bad_files"]


def write_dataset(root: str | Path, n_identities: int, seed: int = 0, size: int = 64,
                  expressions: Iterable[str] = EMOTIONS, intensity_range=INTENSITY_RANGE) -> Path:
    """Render ``n_identities`` x ``len(expressions)`` faces into ``root/images/*.png`` and a
    ``root/labels.csv`` with the file name, identity id, expression, intensity and every identity
    attribute. Returns the CSV path. Loadable with :func:`emosmc.data.ImageFolderDataset`."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows: List[dict] = []
    for i in range(n_identities):
        ident = sample_identity(rng)
        for expr in expressions:
            s = float(rng.uniform(*intensity_range))
            name = f"id{i:05d}_{expr}.png"
            Image.fromarray(render(ident, expr, size, s)).save(root / "images" / name)
            rows.append({"file": f"images/{name}", "identity": i, "expression": expr, "intensity": round(s, 3),
                         **ident.to_row()})
    path = root / "labels.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def add_bad_files(folder: str | Path) -> List[str]:
    """Drop the usual troublemakers of a scraped image folder into ``folder`` (made from its first
    face): a truncated PNG, a text file named ``.jpg``, a 10x10 image, and grayscale, RGBA and CMYK
    copies. Loaders must list the first three as skipped and convert the others."""
    folder = Path(folder)
    first = sorted(folder.glob("*.png"))[0]
    face = Image.open(first).convert("RGB")
    (folder / "zz_truncated.png").write_bytes(first.read_bytes()[:200])
    (folder / "zz_notes.jpg").write_text("this is not an image")
    face.crop((0, 0, 10, 10)).save(folder / "zz_tiny.png")
    face.convert("L").save(folder / "zz_gray.png")
    face.convert("RGBA").save(folder / "zz_rgba.png")
    face.convert("CMYK").save(folder / "zz_cmyk.jpg")
    return ["zz_truncated.png", "zz_notes.jpg", "zz_tiny.png", "zz_gray.png", "zz_rgba.png", "zz_cmyk.jpg"]

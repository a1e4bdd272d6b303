"""Loading face images: one file, or an image folder with an optional labels CSV.

Nothing is silently replaced: an unreadable file raises an error naming it
(:func:`load_image`) or is skipped *and reported* (:class:`ImageFolderDataset`);
grayscale, RGBA, CMYK and non-square or odd-sized images are converted and the
conversion is reported.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageLoadError", "load_image", "ImageFolderDataset", "IMAGE_EXTENSIONS", "to_uint8", "images_to_tensor",
           "Gallery"]

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
MIN_SIZE = 16


class ImageLoadError(ValueError):
    """A file that cannot be used as a face image; the message names the file and the reason."""


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"no such image file: {path}")
    if path.is_dir():
        raise ImageLoadError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageLoadError(f"{path} is not a readable image ({type(err).__name__}: {err})") from err


def load_image(path: Union[str, Path], size: int, notes: Optional[List[str]] = None) -> torch.Tensor:
    """Read ``path`` as a ``(3, size, size)`` float tensor in ``[-1, 1]``.

    Non-RGB modes are converted (RGBA is composited on white) and non-square images are
    centre-cropped before resizing; each conversion is appended to ``notes`` (when given)
    and emitted as a :class:`UserWarning`.
    """
    path = Path(path)
    im = _open(path)
    said = []
    if min(im.size) < MIN_SIZE:
        raise ImageLoadError(f"{path} is {im.size[0]}x{im.size[1]} pixels, too small for a face (min {MIN_SIZE})")
    if im.mode != "RGB":
        said.append(f"converted {im.mode} to RGB")
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("RGB")
    w, h = im.size
    if w != h:
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        said.append(f"centre-cropped {w}x{h} to {s}x{s}")
    if im.size != (size, size):
        said.append(f"resized {im.size[0]}x{im.size[1]} to {size}x{size}")
        im = im.resize((size, size), Image.LANCZOS)
    for s in said:
        msg = f"{path.name}: {s}"
        if notes is not None:
            notes.append(msg)
        if not s.startswith("resized"):
            warnings.warn(msg, UserWarning, stacklevel=2)
    x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float()
    return x / 127.5 - 1.0


@dataclass
class ImageFolderDataset(torch.utils.data.Dataset):
    """Every image under ``root`` (recursively, sorted), as ``(3, size, size)`` tensors in ``[-1, 1]``.

    With a ``labels.csv`` (column ``file`` relative to ``root``; the toy writer adds ``expression``
    and identity attributes) the rows give the file list and ``labels`` holds them. Files that cannot
    be read are left out and listed in ``skipped`` as ``(file, reason)``; conversions are listed in
    ``notes``. Both are checked when the dataset is built, so a long job never dies half-way.
    """

    root: Union[str, Path]
    size: int
    labels_csv: Optional[Union[str, Path]] = None
    max_images: Optional[int] = None  # keep the first readable ones (a quick run)
    files: List[Path] = field(default_factory=list, init=False)
    labels: List[dict] = field(default_factory=list, init=False)
    skipped: List[Tuple[str, str]] = field(default_factory=list, init=False)
    notes: List[str] = field(default_factory=list, init=False)

    def __post_init__(self):
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.root}")
        csv_path = Path(self.labels_csv) if self.labels_csv else self.root / "labels.csv"
        if csv_path.exists():
            with open(csv_path, newline="") as f:
                rows = list(csv.DictReader(f))
            candidates = [(self.root / r["file"], r) for r in rows]
        else:
            candidates = [(p, {}) for p in sorted(self.root.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS]
        for p, row in candidates:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im = _open(p)
                if min(im.size) < MIN_SIZE:
                    raise ImageLoadError(f"{im.size[0]}x{im.size[1]} is too small (min {MIN_SIZE})")
            except (ImageLoadError, FileNotFoundError) as err:
                self.skipped.append((str(p), str(err)))
                continue
            self.files.append(p)
            self.labels.append(row)
            if self.max_images and len(self.files) >= self.max_images:
                break
        if self.skipped:
            warnings.warn(f"{len(self.skipped)} file(s) under {self.root} skipped; see .skipped", UserWarning)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            notes: List[str] = []
            x = load_image(self.files[i], self.size, notes)
        self.notes.extend(n for n in notes if not n.split(": ", 1)[1].startswith("resized"))
        return x


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` in ``[-1, 1]`` -> ``(B, H, W, 3)`` uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).numpy()


def images_to_tensor(images_uint8) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 (numpy or torch) -> ``(B, 3, H, W)`` float in ``[-1, 1]``."""
    x = torch.as_tensor(images_uint8)
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class Gallery(dict):
    """Faces to edit, ``name -> (3, H, W)`` tensor in ``[-1, 1]`` (a profile's :meth:`~emosmc.profiles.Profile.gallery`).
    ``expressions``: ``name ->`` the expression a face shows, where known; ``identities``: ``name ->`` what
    the profile's ground truth needs to judge an edit of it (the toy world: an
    :class:`emosmc.toy.faces.Identity`; empty where there is no ground truth)."""

    def __init__(self, *args, identities: Optional[Dict] = None, expressions: Optional[Dict[str, str]] = None, **kw):
        super().__init__(*args, **kw)
        self.identities = identities or {}
        self.expressions = expressions or {}

"""Where things are: the work folder, Kaggle's read-only inputs, and the finders that search them.

Kaggle mounts attached datasets and earlier notebooks' outputs read-only under ``/kaggle/input``,
in one of these layouts; every finder here accepts all of them:

- ``/kaggle/input/<slug>/...`` (the classic layout);
- ``/kaggle/input/datasets/<owner>/<slug>/...`` and ``/kaggle/input/notebooks/<owner>/<slug>/...``
  (the 2026 layout);
- any of those with a ``versions/<N>/`` level (kagglehub's copies).

Notebooks write only under :func:`work_dir` (``/kaggle/working`` on Kaggle).
"""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Callable, List, Optional, Union

__all__ = ["CELEBAHQ_DATASET", "repository", "kaggle_input", "work_dir", "search_inputs", "mounted", "InputNotFound",
           "find_celebahq_images", "find_model_folder", "find_trained_unet", "find_latent_scorer",
           "find_run_folders", "is_writable"]

CELEBAHQ_DATASET = "badasstechie/celebahq-resized-256x256"  # the Kaggle dataset the report's authors used
SEARCH_DEPTH = 7  # levels below the inputs: notebooks/<owner>/<slug>/versions/<N>/unet-run-celebahq/unet is 7
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def repository() -> Optional[Path]:
    """The repository emosmc runs from (installed from a clone, editable), or ``None`` where it runs without
    one (a wheel, e.g. on Kaggle): what a notebook needs to read ``benchmarks/results/``."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks").is_dir() and (root / "lib" / "emosmc").is_dir() else None


def kaggle_input() -> Path:
    """Kaggle's read-only inputs (datasets and earlier kernels' outputs); ``$EMOSMC_KAGGLE_INPUT``
    overrides it (tests lay out a fake one)."""
    return Path(os.environ.get("EMOSMC_KAGGLE_INPUT", "/kaggle/input"))


def work_dir(path: Optional[Union[str, Path]] = None) -> Path:
    """Where notebooks write: ``path``, else ``$EMOSMC_WORK``, else ``/kaggle/working`` on Kaggle,
    else ``outputs/work`` in the repository (found by walking up from the current folder)."""
    if path is None:
        path = os.environ.get("EMOSMC_WORK")
    if path is None:
        kw = Path(os.environ.get("EMOSMC_KAGGLE_WORKING", "/kaggle/working"))
        if kw.is_dir():
            path = kw
    if path is None:
        here = Path.cwd().resolve()
        repo = next((d for d in (here, *here.parents)
                     if (d / "pyproject.toml").exists() and (d / "lib" / "emosmc").is_dir()), here)
        path = repo / "outputs" / "work"
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_writable(folder: Union[str, Path]) -> bool:
    """Whether files may be created in ``folder``: never under the Kaggle inputs (read-only there,
    whatever the permissions say), elsewhere a real attempt (``os.access`` says yes to root on a
    read-only mount)."""
    import tempfile

    inputs = kaggle_input().resolve()
    if Path(folder).resolve().is_relative_to(inputs):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def search_inputs(pattern: str, inputs: Union[str, Path, None] = None, depth: int = SEARCH_DEPTH,
                  want: Optional[Callable[[Path], bool]] = None) -> List[Path]:
    """Every file or folder whose name matches ``pattern`` (``fnmatch``) at most ``depth`` levels
    below the inputs folder, shallowest first then by path -- except that kagglehub's ``versions/<N>``
    are visited newest first; ``want`` filters them. Folders that match are not searched further."""
    root = Path(inputs) if inputs else kaggle_input()
    found, level = [], [root] if root.is_dir() else []
    for _ in range(depth):
        nxt = []
        for d in level:
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
                if d.name == "versions":  # the newest version first, numerically
                    entries.sort(key=lambda e: -int(e.name) if e.name.isdigit() else 0)
            except OSError:
                continue
            for e in entries:
                p = Path(e.path)
                if fnmatch.fnmatch(e.name, pattern):
                    if want is None or want(p):
                        found.append(p)
                elif e.is_dir():
                    nxt.append(p)
        level = nxt
    return found


def mounted(inputs: Union[str, Path, None] = None, depth: int = 4, limit: int = 40) -> str:
    """What is under the inputs folder, as indented lines (for error messages)."""
    root = Path(inputs) if inputs else kaggle_input()
    if not root.is_dir():
        return f"{root} does not exist"
    lines = []

    def walk(d: Path, level: int):
        try:
            subs = sorted(p for p in d.iterdir() if p.is_dir())
        except OSError:
            return
        for p in subs:
            if len(lines) >= limit:
                return
            lines.append("  " * level + p.name + "/")
            if level + 1 < depth:
                walk(p, level + 1)

    walk(root, 0)
    return f"{root} holds:\n  " + ("\n  ".join(lines) if lines else "(nothing)")


class InputNotFound(FileNotFoundError):
    """A dataset, cache, model or file that no mounted input holds; the message lists what is mounted."""

    def __init__(self, what: str, hint: str = "", inputs: Union[str, Path, None] = None):
        super().__init__(f"{what} was not found. {hint}\n{mounted(inputs)}".strip())


def _image_folder(root: Path, min_images: int = 10) -> Optional[Path]:
    """``root`` or the first folder below it (three levels: ``versions/N/<images>``) that holds at least
    ``min_images`` images."""
    levels = [[root]] + [sorted(p for p in root.glob(pat) if p.is_dir()) for pat in ("*", "*/*", "*/*/*")]
    for d in (d for level in levels for d in level):
        if sum(1 for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) >= min_images:
            return d
    return None


def find_celebahq_images(root: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """The CelebA-HQ 256 image folder: ``$EMOSMC_CELEBAHQ_IMAGES``, ``<root>/images``, or the Kaggle
    dataset in any mount layout. ``None`` when absent."""
    cands = [os.environ.get("EMOSMC_CELEBAHQ_IMAGES"), root and Path(root) / "images"]
    cands += search_inputs(CELEBAHQ_DATASET.split("/")[1], want=Path.is_dir)
    for c in cands:
        if c and Path(c).is_dir():
            found = _image_folder(Path(c))
            if found:
                return found
    return None


def find_model_folder(name: str, root=None) -> Optional[Path]:
    """``<root>/<name>``, else the shallowest ``<name>/`` holding a config.json in the Kaggle inputs --
    never one inside a training checkpoint (``checkpoint-N/unet`` holds raw weights, not the EMA model
    a finished run leaves in ``unet-run-*/unet``)."""
    def final(p: Path) -> bool:
        return (p / "config.json").is_file() and not any(part.startswith("checkpoint-") for part in p.parts)

    cands = [Path(root) / name] if root else []
    cands += search_inputs(name, want=final)
    return next((c for c in cands if (c / "config.json").is_file()), None)


def find_trained_unet(root: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """A trained celebahq UNet folder: ``<root>/unet``, or ``unet/`` in an earlier kernel's output (02)."""
    return find_model_folder("unet", root)


def find_latent_scorer(root: Optional[Union[str, Path]] = None) -> Optional[Path]:
    """A distilled latent scorer: ``<root>/latent_scorer``, or one in an earlier kernel's output (03)."""
    return find_model_folder("latent_scorer", root)


def find_run_folders(name: str, inputs: Union[str, Path, None] = None) -> List[Path]:
    """Training-run folders called ``name`` that hold a ``checkpoint-*`` (02's earlier versions)."""
    return search_inputs(name, inputs, want=lambda p: p.is_dir() and any(p.glob("checkpoint-*")))

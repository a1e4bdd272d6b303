"""The latent cache: every image of a folder encoded once with the VAE.

    cache = encode_folder(vae, dataset, "work/latents", vae_id="stabilityai/sd-vae-ft-ema")
    z = cache.load()            # (M, 4, h, w) float32, already times the scaling factor
    cache.files[i]              # the source file of z[i]

On disk: shards ``latents-00000.safetensors`` (fp16 ``latents`` and int64 ``index``) and a
``manifest.json`` (VAE id, scaling factor, image size, latent shape, the source files in order,
the shards, and the files that were skipped with the reason). A shard is written to a temporary
name and renamed when complete, so after an interruption :func:`encode_folder` redoes only the
shards that are missing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from tqdm.auto import tqdm

from .diffusion import encode_images

__all__ = ["LatentCache", "encode_folder", "find_cache"]

MANIFEST = "manifest.json"


def _shard_name(i: int) -> str:
    return f"latents-{i:05d}.safetensors"


@dataclass
class LatentCache:
    """A finished (or partly finished) latent cache folder."""

    root: Path
    manifest: dict

    @classmethod
    def open(cls, root: Union[str, Path]) -> "LatentCache":
        root = Path(root)
        path = root / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"no latent cache at {root} (missing {MANIFEST}); make one with "
                                    "emosmc.latents.encode_folder or notebooks/01_vae_encode.ipynb")
        return cls(root, json.loads(path.read_text()))

    @property
    def files(self) -> List[str]:
        return self.manifest["files"]

    @property
    def scaling_factor(self) -> float:
        return float(self.manifest["scaling_factor"])

    @property
    def complete(self) -> bool:
        return all((self.root / s["file"]).exists() for s in self.manifest["shards"])

    def __len__(self) -> int:
        return len(self.files)

    def load(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """All latents in file order (scaled: ready for the UNet)."""
        from safetensors.torch import load_file

        missing = [s["file"] for s in self.manifest["shards"] if not (self.root / s["file"]).exists()]
        if missing:
            raise FileNotFoundError(f"latent cache {self.root} is incomplete: {len(missing)} shard(s) missing "
                                    f"(first: {missing[0]}); rerun encode_folder to finish it")
        parts = [load_file(str(self.root / s["file"])) for s in self.manifest["shards"]]
        z = torch.cat([p["latents"] for p in parts]).to(dtype)
        idx = torch.cat([p["index"] for p in parts])
        if not torch.equal(idx, torch.arange(len(self))):
            raise ValueError(f"latent cache {self.root}: shard indices do not cover 0..{len(self) - 1} in order")
        return z

    def image_dataset(self):
        """The source images, in cache order (an :class:`emosmc.data.ImageFolderDataset`)."""
        import warnings

        from .data import ImageFolderDataset

        root = Path(self.manifest["root"])
        if not root.is_dir():  # e.g. the dataset is mounted under another Kaggle layout than when encoded
            from .places import InputNotFound, search_inputs

            found = search_inputs(root.name, want=lambda p: p.is_dir() and bool(self.files)
                                  and (p / self.files[0]).is_file())
            if not found:
                raise InputNotFound(f"the images of the latent cache {self.root} ({root})",
                                    "Attach the dataset they came from.")
            root = found[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the skipped files are listed in the manifest already
            ds = ImageFolderDataset(root, self.manifest["image_size"], max_images=len(self))
        if [str(Path(f).relative_to(ds.root)) for f in ds.files] != self.files:
            raise ValueError(f"the images under {ds.root} changed since the cache {self.root} was made")
        return ds

    def scores_folder(self) -> Path:
        """Where scores of this cache are written: beside the latents when that folder is writable,
        else ``<work folder>/<cache name>`` (on Kaggle an earlier kernel's output is read-only)."""
        from .places import is_writable, work_dir

        return self.root if is_writable(self.root) else work_dir() / self.root.name

    def save_scores(self, name: str, tensors: Dict[str, torch.Tensor], meta: Optional[dict] = None) -> Path:
        """Store per-image tensors (e.g. classifier probabilities) in :meth:`scores_folder`."""
        from safetensors.torch import save_file

        folder = self.scores_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.safetensors"
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(path),
                  metadata={k: str(v) for k, v in (meta or {}).items()})
        return path

    def load_scores(self, name: str) -> Dict[str, torch.Tensor]:
        """Scores saved by :meth:`save_scores`: beside the latents, in the work folder, or in a
        later kernel's output among the inputs."""
        from safetensors.torch import load_file

        from .places import search_inputs, work_dir

        file = f"{name}.safetensors"
        cands = [self.root, work_dir() / self.root.name] + search_inputs(self.root.name, want=Path.is_dir)
        path = next((c / file for c in cands if (c / file).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"no scores {name!r} for the cache {self.root} ({file} is in none of "
                                    f"{[str(c) for c in cands]}); notebooks/03_classifier_scoring.ipynb writes them")
        return load_file(str(path))


def find_cache(name: str = "latents", work: Union[str, Path, None] = None,
               inputs: Union[str, Path, None] = None) -> Optional[Path]:
    """Where a finished cache called ``name`` is: ``<work>/<name>`` first, then the shallowest
    ``<name>`` folder among the inputs (on Kaggle, an earlier kernel's output, in any mount layout)."""
    from .places import search_inputs

    def finished(c: Path) -> bool:
        return (c / MANIFEST).exists() and LatentCache.open(c).complete

    cands = [Path(work) / name] if work else []
    return next((c for c in cands + search_inputs(name, inputs, want=finished) if finished(c)), None)


@torch.no_grad()
def encode_folder(vae, dataset, out: Union[str, Path], vae_id: str = "", shard_size: int = 1024,
                  batch_size: int = 32, progress: bool = True) -> LatentCache:
    """Encode every image of ``dataset`` (an :class:`emosmc.data.ImageFolderDataset`) with ``vae``
    (posterior mean, times ``vae.config.scaling_factor``, on the VAE's device and dtype) into sharded
    fp16 safetensors under ``out``.

    Resumable: shards already on disk are kept. A manifest made from other files or another VAE (another id,
    or the same one with other weights) is an error (nothing is overwritten); use a new folder.
    """
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [str(Path(f).relative_to(dataset.root)) for f in dataset.files]
    n = len(files)
    if n == 0:
        raise ValueError(f"no readable images under {dataset.root} (skipped: {dataset.skipped[:3]})")
    from .tracking import weights_fingerprint

    plan = {
        "vae": vae_id, "vae_weights": weights_fingerprint(vae), "scaling_factor": float(vae.config.scaling_factor),
        "image_size": int(dataset.size),
        "root": str(dataset.root), "files": files, "shard_size": shard_size,
        "shards": [{"file": _shard_name(i), "start": s, "count": min(shard_size, n - s)}
                   for i, s in enumerate(range(0, n, shard_size))],
        "skipped": [{"file": f, "reason": r} for f, r in dataset.skipped],
    }
    mpath = out / MANIFEST
    if mpath.exists():
        old = json.loads(mpath.read_text())
        keys = ("vae", "scaling_factor", "image_size", "files", "shard_size") + (("vae_weights",) if "vae_weights" in old else ())
        for k in keys:  # vae_weights: the same VAE retrained (caches written before it was recorded are not checked)
            if old.get(k) != plan[k]:
                raise ValueError(f"{mpath} was made with a different {k!r}; encode into a new folder "
                                 "(or delete that one) -- nothing was overwritten")
        plan["latent_shape"] = old.get("latent_shape")
    todo = [s for s in plan["shards"] if not (out / s["file"]).exists()]
    bar = tqdm(total=sum(s["count"] for s in todo), desc="encode", unit="img", disable=not progress)
    for s in todo:
        lat = []
        for b in range(s["start"], s["start"] + s["count"], batch_size):
            x = torch.stack([dataset[i] for i in range(b, min(b + batch_size, s["start"] + s["count"]))])
            z = encode_images(vae, x)
            lat.append(z.float().cpu())
            bar.update(len(x))
        z = torch.cat(lat)
        plan["latent_shape"] = list(z.shape[1:])
        tmp = out / (s["file"] + ".tmp")
        save_file({"latents": z.half().contiguous(), "index": torch.arange(s["start"], s["start"] + s["count"])}, str(tmp))
        os.replace(tmp, out / s["file"])
        plan["notes"] = list(dataset.notes)
        mpath.write_text(json.dumps(plan, indent=1))
    bar.close()
    if not mpath.exists():
        mpath.write_text(json.dumps(plan, indent=1))
    return LatentCache(out, json.loads(mpath.read_text()))

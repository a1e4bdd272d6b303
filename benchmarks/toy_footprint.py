"""How large is an expression? Pixels and 16x16 latent pixels that change between neutral and each
expression, for the toy world's renderer (or any module with ``sample_identity``, ``render`` and
``face_regions``: ``--faces path/to/faces.py`` measures an older design).

    python benchmarks/toy_footprint.py --out benchmarks/results/toy_footprint.json --grid docs/toy_faces.png
    git show ab66d06:lib/emosmc/toy/faces.py > /tmp/faces_v1.py   # the first design
    python benchmarks/toy_footprint.py --faces /tmp/faces_v1.py --label ab66d06:lib/emosmc/toy/faces.py \
        --out benchmarks/results/toy_footprint_v1.json

A pixel changes when some channel moves by more than 16 (0-255); a latent pixel (a 4x4 block of a 64x64
face, one cell of the VAE's 4x16x16 latent) changes when at least 4 of its 16 pixels change. Also printed:
the mean absolute change over the face (0-255) and the thickness of the change, pixels over its outline
length (about the stroke width). Full intensity, identities of the held-out seed.
"""
import argparse
import importlib.util
import sys

import numpy as np
from scipy import ndimage

from emosmc.labels import EMOTIONS
from results_json import emit


def load(path):
    if path is None:
        from emosmc.toy import faces
        return faces
    spec = importlib.util.spec_from_file_location("faces_under_test", path, submodule_search_locations=[])
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "emosmc.toy"
    sys.modules["faces_under_test"] = mod
    spec.loader.exec_module(mod)
    return mod


def footprint(faces, n, seed=10_000):
    rng = np.random.default_rng(seed)
    ids = [faces.sample_identity(rng) for _ in range(n)]
    out = {}
    for e in EMOTIONS:
        if e == "neutral":
            continue
        px, cells, mad, thick = [], [], [], []
        for ident in ids:
            a = faces.render(ident, "neutral").astype(np.int16)
            b = faces.render(ident, e).astype(np.int16)
            ch = np.abs(a - b).max(-1) > 16
            px.append(ch.sum())
            cells.append((ch.reshape(16, 4, 16, 4).sum((1, 3)) >= 4).sum())
            mad.append(np.abs(a - b).mean())
            edge = ch & ~ndimage.binary_erosion(ch)
            thick.append(ch.sum() / max(1, edge.sum()) * 2)
        out[e] = {"pixels": float(np.mean(px)), "latent_pixels": float(np.mean(cells)),
                  "mean_abs_change": round(float(np.mean(mad)), 2), "stroke_px": round(float(np.median(thick)), 2)}
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", default=None)
    p.add_argument("--identities", type=int, default=100)
    p.add_argument("--label", help="what --faces is, for the JSON (default: its path)")
    p.add_argument("--out", default=None)
    p.add_argument("--grid", help="also draw 8 held-out identities x the 7 expressions (PNG) here")
    a = p.parse_args()
    res = {"faces": a.label or a.faces or "emosmc.toy.faces", "identities": a.identities,
           "per_expression": footprint(load(a.faces), a.identities)}
    emit(res, a.out)
    if a.grid:
        import matplotlib

        matplotlib.use("Agg")
        from emosmc.viz import image_grid

        faces = load(a.faces)
        rng = np.random.default_rng(10_000)
        ids = [faces.sample_identity(rng) for _ in range(8)]
        tiles = np.stack([faces.render(i, e) for i in ids for e in EMOTIONS])
        titles = [e if r == 0 else None for r in range(8) for e in EMOTIONS]
        image_grid(tiles, [t or "" for t in titles], ncols=7, scale=1.3, fontsize=9).savefig(a.grid, dpi=80)

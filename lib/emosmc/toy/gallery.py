"""The toy world's faces in memory (:func:`toy_faces`: every identity in every expression) and the toy
profile's faces to edit: held-out identities (``HELDOUT_SEED``, which no model trained on), each with its
identity, so every edit has a ground truth (:mod:`emosmc.ground_truth`)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch

from ..data import Gallery, images_to_tensor
from ..labels import EMOTIONS
from .faces import HELDOUT_SEED, INTENSITY_RANGE, Identity, render, sample_identity

__all__ = ["toy_faces", "source_rows", "counterfactual_rows", "toy_gallery", "demo_faces"]


def toy_faces(n_identities: int, seed: int, expressions: Sequence[str] = EMOTIONS, size: int = 64,
              intensity_range=INTENSITY_RANGE):
    """Render every identity with every expression, in memory.

    Returns ``(images uint8 (M, size, size, 3), labels (M,) canonical emotion index, identities list,
    identity index (M,))``. Training uses ``TRAIN_SEED``; the held-out faces (new identities) use
    ``HELDOUT_SEED``.
    """
    rng = np.random.default_rng(seed)
    ids: List[Identity] = [sample_identity(rng) for _ in range(n_identities)]
    imgs, labels, who = [], [], []
    for i, ident in enumerate(ids):
        for e in expressions:
            imgs.append(render(ident, e, size, float(rng.uniform(*intensity_range))))
            labels.append(EMOTIONS.index(e))
            who.append(i)
    return np.stack(imgs), torch.tensor(labels), ids, torch.tensor(who)


def source_rows(n_identities: int) -> torch.Tensor:
    """The rows of :func:`toy_faces` that the benchmarks edit: identity ``i`` shown with ``EMOTIONS[i % 7]``,
    so every expression is a source equally often."""
    return torch.tensor([i * 7 + i % 7 for i in range(n_identities)])


def counterfactual_rows(n_identities: int, seed: int):
    """The benchmarks' counterfactuals: identity ``i`` shown with ``EMOTIONS[i % 7]`` (:func:`source_rows`), edited
    towards each of the 6 other expressions. Returns ``(sources (M, 3, 64, 64) in [-1, 1], the sources' expressions
    (M,), targets (M,), identities, keys)``, canonical indices, ``keys[m] = 7 i + target`` (one generator per edit:
    :func:`emosmc.profiles.row_generators`)."""
    imgs, labels, ids, _ = toy_faces(n_identities, seed)
    pick = source_rows(n_identities)
    x, lab = images_to_tensor(imgs)[pick], labels[pick]
    rows = [(i, t) for i in range(n_identities) for t in range(7) if t != int(lab[i])]
    who = [i for i, _ in rows]
    return (x[who], lab[who], torch.tensor([t for _, t in rows]), [ids[i] for i in who],
            [i * 7 + t for i, t in rows])


def toy_gallery(n: int = 7, seed: int = HELDOUT_SEED) -> Gallery:
    """``n`` identities (``sample_identity(seed + i)``), face ``i`` showing ``EMOTIONS[i % 7]`` at full
    intensity, keyed ``"toy face i (expression)"`` (the notebooks' and the explorer's gallery)."""
    out, ids, expr = {}, {}, {}
    for i in range(n):
        e, ident = EMOTIONS[i % 7], sample_identity(seed + i)
        name = f"toy face {i} ({e})"
        out[name], ids[name], expr[name] = images_to_tensor(torch.from_numpy(render(ident, e))[None])[0], ident, e
    return Gallery(out, identities=ids, expressions=expr)


def demo_faces(n: int = 3) -> Gallery:
    """The faces of ``python -m emosmc demo``: ``n`` held-out identities of :func:`toy_faces`,
    identity ``i`` showing neutral, sad or angry in turn (``i % 3``), at the datasets' intensities."""
    order = ("neutral", "sad", "angry")
    imgs, labels, ids, _ = toy_faces(n, HELDOUT_SEED, expressions=order)
    pick = torch.arange(n) * 3 + torch.arange(n) % 3  # one expression per identity
    x = images_to_tensor(imgs[pick.numpy()])
    names = [f"toy face {i} ({EMOTIONS[int(labels[k])]})" for i, k in enumerate(pick.tolist())]
    return Gallery(dict(zip(names, x)), identities=dict(zip(names, ids)),
                   expressions={nm: EMOTIONS[int(labels[k])] for nm, k in zip(names, pick.tolist())})

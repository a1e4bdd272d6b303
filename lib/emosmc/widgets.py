"""The ipywidgets explorer of notebooks/06_explorer.ipynb.

``explore(...)`` is the plain function behind the Run button (tested by pytest:
widget callbacks swallow exceptions); ``explorer(...)`` builds the controls.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .labels import EMOTIONS, emotion_index
from .toy.faces import HELDOUT_SEED

__all__ = ["ExplorerResult", "Gallery", "explore", "image_from_upload", "explorer", "toy_gallery", "face_gallery"]



class Gallery(dict):
    """Faces to edit, ``name -> (3, H, W)`` tensor; in ``toy`` also ``identities``: ``name ->``
    :class:`emosmc.toy.faces.Identity`, so every edit can be judged by the toy world's ground truth."""

    def __init__(self, *args, identities: Optional[dict] = None, **kw):
        super().__init__(*args, **kw)
        self.identities = identities or {}


@dataclass
class ExplorerResult:
    output: object  # EmotionEditOutput
    particles: torch.Tensor  # (N, 3, H, W) decoded final particles
    particle_probs: torch.Tensor  # (N,) classifier target probability of each
    seconds: float
    notes: List[str] = field(default_factory=list)
    truth: Optional[str] = None  # the true expression of the best edit (toy world, when the identity is known)
    particle_truths: Optional[List[str]] = None

    @property
    def target_prob(self) -> float:
        return float(self.output.target_probs[0])

    @property
    def verdict(self) -> str:
        """``"true: happy ✓, classifier p(happy) = 0.98"``: the ground truth first, when known."""
        target = self.output.targets[0]
        head = f"true: {self.truth} {'✓' if self.truth == target else '✗'}, " if self.truth else ""
        return head + f"classifier p({target}) = {self.target_prob:.2f}"


def explore(pipe, source: torch.Tensor, target: str, seed: int = 0, identity=None, **settings) -> ExplorerResult:
    """One steered edit of one ``(3, H, W)`` source image, with everything the explorer shows.
    ``settings`` are the pipeline's: any :class:`~emosmc.smc.SMCConfig` field (default: the report's),
    ``scorer`` and ``final_check``. ``scorer="pixel"`` decodes every particle at every step (the
    report's Algorithm 1); ``scorer="latent"`` steers with the latent scorer and decodes
    ``final_check`` particles at the end (the particles shown are decoded afterwards, for the figure).
    With the toy ``identity`` of the source, the best edit and every particle get their true
    expression (:func:`emosmc.ground_truth.true_expression`)."""
    emotion_index(target)  # the settings themselves are checked by SMCConfig, once
    t0 = time.time()
    out = pipe(source, target, generator=torch.Generator().manual_seed(seed), progress=False, **settings)
    parts = pipe.decode(out.latents[0])
    probs = pipe.classify(parts)[:, emotion_index(target)].cpu()
    r = ExplorerResult(out, parts.cpu(), probs, time.time() - t0)
    if identity is not None:
        from .ground_truth import true_expression

        r.truth = true_expression(out.images.cpu(), [identity]).names[0]
        r.particle_truths = true_expression(r.particles, [identity] * len(r.particles)).names
    return r


def image_from_upload(content: bytes, name: str, size: int, notes: Optional[List[str]] = None) -> torch.Tensor:
    """An uploaded file's bytes -> ``(3, size, size)`` in ``[-1, 1]``, through the same checks and
    conversions as a file on disk (errors name the upload)."""
    from .data import load_image

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / Path(name).name
        path.write_bytes(bytes(content))
        return load_image(path, size, notes)


def toy_gallery(n: int = 7, seed: int = HELDOUT_SEED) -> Gallery:
    """Held-out toy faces, each identity with a different expression, keyed by a readable name
    (their identities in ``.identities``)."""
    from .toy.faces import render, sample_identity
    from .data import images_to_tensor

    out, ids = {}, {}
    for i in range(n):
        e, ident = EMOTIONS[i % 7], sample_identity(seed + i)
        name = f"toy face {i} ({e})"
        out[name], ids[name] = images_to_tensor(torch.from_numpy(render(ident, e))[None])[0], ident
    return Gallery(out, identities=ids)


def explorer(pipe, gallery: Dict[str, torch.Tensor], defaults: Optional[dict] = None):
    """The widget UI: a face (gallery or upload), a target and every SMC setting; Run shows the
    best result, all particles, the ESS curve and the genealogy."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from .viz import edit_figure

    from .smc import SMCConfig

    d = {**asdict(SMCConfig()), "scorer": "pixel", "seed": 0, **(defaults or {})}  # the pipeline's defaults
    passed = set(asdict(SMCConfig())) - {"reward_transform"} | {"final_check"}  # what explore() passes on
    style = {"description_width": "110px"}
    face = W.Dropdown(options=list(gallery), description="face", style=style)
    upload = W.FileUpload(accept="image/*", multiple=False, description="or upload")
    target = W.Dropdown(options=list(EMOTIONS), value="happy", description="target", style=style)
    N = W.IntSlider(d["num_particles"], 1, 64, description="particles N", style=style)
    steps = W.IntSlider(d["num_inference_steps"], 10, 250, description="steps", style=style)
    strength = W.FloatSlider(d["noise_strength"], min=0.05, max=1.0, step=0.05, description="noise strength", style=style)
    gamma = W.FloatSlider(d["guidance_scale"], min=0.0, max=40.0, step=0.5, description="gamma", style=style)
    R = W.IntSlider(d["resample_interval"], 1, 20, description="resample every R", style=style)
    from .resampling import RESAMPLING_SCHEMES
    from .potentials import POTENTIALS  # the registries: a potential or scheme added there appears here

    potential = W.Dropdown(options=list(POTENTIALS), value=d["potential"], description="potential", style=style)
    scheme = W.Dropdown(options=list(RESAMPLING_SCHEMES), value=d["resampling"], description="resampling",
                        style=style)
    scorers = ["pixel"] + (["latent"] if pipe.latent_scorer is not None else [])
    scorer = W.Dropdown(options=scorers, value=d["scorer"] if d["scorer"] in scorers else "pixel",
                        description="scorer", style=style)
    seed = W.IntText(d["seed"], description="seed", style=style)
    run = W.Button(description="Run", button_style="primary")
    status, out = W.HTML(), W.Output()

    def source():
        if upload.value:
            f = upload.value[0] if isinstance(upload.value, (list, tuple)) else list(upload.value.values())[0]
            notes: List[str] = []
            x = image_from_upload(f["content"], f["name"], pipe.image_size, notes)
            return x, f["name"], notes, None
        return gallery[face.value], face.value, [], getattr(gallery, "identities", {}).get(face.value)

    last: dict = {"result": None, "figure": None}

    def on_run(_=None):
        out.clear_output()
        last.update(result=None, figure=None)
        status.value = "running..."
        try:
            x, name, notes, identity = source()
            settings = dict(num_particles=N.value, num_inference_steps=steps.value, noise_strength=strength.value,
                            guidance_scale=gamma.value, resample_interval=R.value, potential=potential.value,
                            resampling=scheme.value, scorer=scorer.value)
            fixed = {k: v for k, v in d.items() if k in passed and k not in settings}  # settings with no widget
            r = explore(pipe, x, target.value, seed=seed.value, identity=identity, **fixed, **settings)
        except Exception as err:  # shown to the user: widget callbacks would swallow it
            status.value = f"<b style='color:#b00'>{type(err).__name__}: {err}</b>"
            return
        status.value = (f"{name} -> {target.value}: {r.verdict} in {r.seconds:.1f} s"
                        + ("; " + "; ".join(notes) if notes else ""))
        fig = edit_figure(x, r.output.images[0], r.particles, r.particle_probs, r.output.smc, target.value,
                          best_prob=r.target_prob, best_truth=r.truth, particle_truths=r.particle_truths)
        try:  # rendered now (no output capture: safe from a button click and from a cell)
            out.append_display_data(fig)
        except Exception:  # no IPython display machinery (plain Python, tests)
            pass
        plt.close(fig)
        last.update(result=r, figure=fig)

    run.on_click(on_run)
    ui = W.VBox([W.HBox([W.VBox([face, upload, target, N, steps, strength]),
                         W.VBox([gamma, R, potential, scheme, scorer, seed, run])]), status, out])
    ui.run, ui.status, ui.last = on_run, status, last  # type: ignore[attr-defined]
    ui.controls = dict(face=face, upload=upload, target=target, num_particles=N, num_inference_steps=steps,
                       noise_strength=strength, guidance_scale=gamma, resample_interval=R, potential=potential,
                       resampling=scheme, scorer=scorer, seed=seed)  # type: ignore[attr-defined]
    return ui


def face_gallery(profile, n: int = 7, seed: int = HELDOUT_SEED) -> Gallery:
    """Faces to edit: held-out toy faces in ``toy``; in ``celebahq`` the first ``n`` images of the
    CelebA-HQ folder (or of ``$EMOSMC_SAMPLES``, e.g. ``../shared/data/celebahq-samples/256``)."""
    import os
    import warnings

    from .data import ImageFolderDataset

    if profile.name == "toy":
        return toy_gallery(n, seed)  # a Gallery: its identities give the ground truth of every edit
    folder = os.environ.get("EMOSMC_SAMPLES") or profile.data
    if not folder or not Path(folder).is_dir():
        raise FileNotFoundError(f"no face images found at {folder!r}: set EMOSMC_SAMPLES to a folder of face photos")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = ImageFolderDataset(folder, profile.image_size, max_images=n)
    return Gallery({Path(f).name: ds[i] for i, f in enumerate(ds.files)})

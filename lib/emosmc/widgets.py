"""The ipywidgets explorer of notebooks/06_explorer.ipynb.

``explore(...)`` is the plain function behind the Run button (tested by pytest:
widget callbacks swallow exceptions); ``explorer(...)`` builds the controls.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .data import Gallery  # noqa: F401  (a profile's faces: Profile.gallery)
from .edit_config import EditConfig
from .labels import EMOTIONS, emotion_index

__all__ = ["ExplorerResult", "Gallery", "explore", "image_from_upload", "explorer"]


@dataclass
class ExplorerResult:
    output: object  # EmotionEditOutput
    particles: torch.Tensor  # (N, 3, H, W) decoded final particles
    particle_probs: torch.Tensor  # (N,) classifier target probability of each
    seconds: float
    notes: List[str] = field(default_factory=list)
    truth: Optional[str] = None  # the true expression of the best edit (toy world, when the identity is known)
    particle_truths: Optional[List[str]] = None
    same_person: Optional[bool] = None  # does the best edit keep the person (toy world: emosmc.ground_truth)

    @property
    def target_prob(self) -> float:
        return float(self.output.target_probs[0])

    @property
    def verdict(self) -> str:
        """``"true: happy ✓ · same person ✓, classifier p(happy) = 0.98"``: the ground truth first, when known."""
        from .evaluation import verdict_text

        target = self.output.targets[0]
        head = verdict_text(self.truth, target, None if self.same_person is None else float(self.same_person))
        return (head + ", " if head else "") + f"classifier p({target}) = {self.target_prob:.2f}"


def explore(pipe, source: torch.Tensor, target: str, config: Optional[EditConfig] = None, seed: int = 0,
            identity=None, **settings) -> ExplorerResult:
    """One steered edit of one ``(3, H, W)`` source image, with everything the explorer shows.
    ``config`` and ``settings`` are the pipeline's (an :class:`~emosmc.edit_config.EditConfig`, default: the
    report's steering, and keyword changes to it). ``scorer="pixel"`` decodes every particle at every step
    (the report's Algorithm 1); ``scorer="latent"`` steers with the latent scorer and decodes ``final_check``
    particles at the end (the particles shown are decoded afterwards, for the figure).
    With the toy ``identity`` of the source, the best edit and every particle get their true
    expression (:func:`emosmc.ground_truth.true_expression`), and the best edit the same-person verdict
    (:func:`emosmc.ground_truth.same_person`)."""
    emotion_index(target)  # the settings themselves are checked by EditConfig, once
    t0 = time.time()
    from .profiles import row_generators

    # the generator of row 0 of a batch seeded alike (row_generators): the same edit as in any batch
    out = pipe(source, target, config, generator=row_generators(seed, 1), progress=False, **settings)
    parts = pipe.decode(out.latents[0])
    probs = pipe.classify(parts)[:, int(out.target_index[0])].cpu()
    r = ExplorerResult(out, parts.cpu(), probs, time.time() - t0)
    if identity is not None:
        from .ground_truth import identity_kept, same_person, true_expression

        r.truth = true_expression(out.images.cpu(), [identity]).names[0]
        r.same_person = bool(same_person(identity_kept(source[None].cpu(), out.images.cpu(), [identity]))[0])
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


def explorer(pipe, gallery: Dict[str, torch.Tensor], config: Optional[EditConfig] = None, seed: int = 0):
    """The widget UI: a face (gallery or upload), a target and the main steering settings, starting at
    ``config`` (default: the pipeline's; a profile's preset is ``profile.edit``) -- the settings without a
    control keep ``config``'s. Run shows the best result, all particles, the ESS curve and the genealogy."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from .viz import edit_figure

    c = config = config or EditConfig()
    style = {"description_width": "110px"}
    face = W.Dropdown(options=list(gallery), description="face", style=style)
    upload = W.FileUpload(accept="image/*", multiple=False, description="or upload")
    target = W.Dropdown(options=list(EMOTIONS), value="happy", description="target", style=style)
    N = W.IntSlider(c.num_particles, 1, 64, description="particles N", style=style)
    steps = W.IntSlider(c.num_inference_steps, 10, 250, description="steps", style=style)
    strength = W.FloatSlider(c.noise_strength, min=0.05, max=1.0, step=0.05, description="noise strength", style=style)
    gamma = W.FloatSlider(c.guidance_scale, min=0.0, max=40.0, step=0.5, description="gamma", style=style)
    R = W.IntSlider(c.resample_interval, 1, 20, description="resample every R", style=style)
    nudge = W.FloatSlider(c.gradient_scale, min=0.0, max=40.0, step=1.0, description="gradient nudge", style=style)
    from .resampling import RESAMPLING_SCHEMES
    from .potentials import POTENTIALS  # the registries: a potential or scheme added there appears here

    potential = W.Dropdown(options=list(POTENTIALS), value=c.potential, description="potential", style=style)
    scheme = W.Dropdown(options=list(RESAMPLING_SCHEMES), value=c.resampling, description="resampling",
                        style=style)
    scorers = ["pixel"] + (["latent"] if pipe.latent_scorer is not None else [])
    scorer = W.Dropdown(options=scorers, value=c.scorer if c.scorer in scorers else "pixel",
                        description="scorer", style=style)
    region = W.Dropdown(options=[("keep the person (detected region)", "expression"), ("edit the whole image", "none")],
                        value=c.region, description="region", style=style)
    seed_box = W.IntText(seed, description="seed", style=style)
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
            keep = {} if region.value != "none" else dict(paste_back=False, min_change=0.0, lowpass=0)  # these need a region
            run_config = config.replace(num_particles=N.value, num_inference_steps=steps.value,
                                        noise_strength=strength.value, guidance_scale=gamma.value,
                                        resample_interval=R.value, potential=potential.value,
                                        resampling=scheme.value, scorer=scorer.value, region=region.value,
                                        gradient_scale=nudge.value, **keep)
            r = explore(pipe, x, target.value, run_config, seed=seed_box.value, identity=identity)
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
                         W.VBox([gamma, nudge, R, potential, scheme, scorer, region, seed_box, run])]), status, out])
    ui.run, ui.status, ui.last = on_run, status, last  # type: ignore[attr-defined]
    ui.controls = dict(face=face, upload=upload, target=target, num_particles=N, num_inference_steps=steps,
                       noise_strength=strength, guidance_scale=gamma, resample_interval=R, potential=potential,
                       resampling=scheme, scorer=scorer, region=region, gradient_scale=nudge,
                       seed=seed_box)  # type: ignore[attr-defined]
    return ui

"""Command line: ``python -m emosmc demo`` and ``python -m emosmc edit IMAGE --target happy``."""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import fields
from pathlib import Path
from typing import List, Optional

import torch

from .profiles import edit_settings, get_profile, resolve_profile
from .resampling import RESAMPLING_SCHEMES
from .labels import EMOTIONS, emotion_index
from .potentials import POTENTIALS
from .smc import REWARD_ON, SMCConfig

def _pipeline(profile):
    from .pipeline import EmotionEditPipeline

    if profile.name == "celebahq" and not Path(profile.unet, "config.json").exists():
        sys.exit(f"emosmc: the celebahq profile needs a trained UNet at {profile.unet} (set EMOSMC_CELEBAHQ to the "
                 "folder holding unet/, or train one with notebooks/02_train_unet.ipynb), plus internet access for "
                 "stabilityai/sd-vae-ft-ema and dima806/facial_emotions_image_detection.")
    try:
        return EmotionEditPipeline.from_profile(profile)
    except FileNotFoundError as err:
        sys.exit(f"emosmc: the {profile.name} profile's models are not available.\n{err}")


def demo(out: Path, n_faces: int = 3, seed: int = 0, image=None, profile_name: str = "toy") -> dict:
    """Counterfactuals of a few held-out toy faces (or of ``image``) towards every emotion: a grid
    (source, then one column per target with the ground-truth verdict -- toy faces only -- and the
    judge's probability under each) and a JSON of scores that opens with the true flip rate."""
    import matplotlib

    matplotlib.use("Agg")
    from .toy.assets import toy_faces
    from .toy.faces import HELDOUT_SEED
    from .data import images_to_tensor
    from .viz import image_grid

    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile(profile_name)
    pipe = _pipeline(profile)
    judge = profile.load("judge") if profile.judge else pipe.classifier
    judge_name = "judge" if profile.judge else "classifier"
    if image is not None:
        notes = []
        src = pipe.load_images([image], notes)
        for n in notes:
            print("note:", n)
        from .metrics import no_face_warnings

        no_face_warnings(src, [Path(image).name])
        src_labels, idents = ["your image"], None
    else:
        imgs, labels, ids, _ = toy_faces(n_faces, HELDOUT_SEED, expressions=("neutral", "sad", "angry"))
        pick = torch.arange(n_faces) * 3 + torch.arange(n_faces) % 3  # one expression per identity
        src, src_labels = images_to_tensor(imgs[pick.numpy()]), [EMOTIONS[int(labels[i])] for i in pick]
        idents = ids  # the toy world knows each true counterfactual: judge the edits by it first
    settings = edit_settings(profile_name)
    B, T = len(src), len(EMOTIONS)
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    res = pipe(src.repeat_interleave(T, 0), list(EMOTIONS) * B, generator=g, progress=True, **settings)
    seconds = time.time() - t0
    with torch.no_grad():
        p_src, p_out = judge(src.to(pipe.device)).cpu(), judge(res.images).cpu()
    truth = None
    if idents is not None:
        from .ground_truth import true_expression

        truth = true_expression(res.images.cpu(), [i for i in idents for _ in range(T)]).names
    tiles, titles, rows = [], [], []
    for b in range(B):
        tiles.append(src[b:b + 1])
        titles.append(f"source ({src_labels[b]})")
        row = {"source": src_labels[b], "source_probs": dict(zip(EMOTIONS, p_src[b].tolist())), "edits": {}}
        for j, e in enumerate(EMOTIONS):
            k = b * T + j
            tiles.append(res.images[k:k + 1].cpu())
            verdict = f"true: {truth[k]} {'✓' if truth[k] == e else '✗'}\n" if truth else ""
            titles.append(f"→ {e}\n{verdict}{judge_name} p={p_out[k, j]:.2f}")
            row["edits"][e] = {"judge_prob": float(p_out[k, j]), "judge_argmax": EMOTIONS[int(p_out[k].argmax())],
                               "classifier_prob": float(res.probs[k, j])}
            if truth:
                row["edits"][e]["true_expression"] = truth[k]
        rows.append(row)
    fig = image_grid(torch.cat(tiles), titles, ncols=T + 1, scale=1.5)
    fig.savefig(out / "demo_grid.png", dpi=110)
    edits = [(t, e) for r in rows for t, e in r["edits"].items() if t != r["source"]]
    summary = {
        "profile": profile_name, "settings": settings, "seed": seed, "seconds": round(seconds, 1),
        "seconds_per_counterfactual": round(seconds / (B * T), 2),
        "judge_flip_rate": sum(e["judge_argmax"] == t for t, e in edits) / max(1, len(edits)),
        "faces": rows,
    }
    if truth:  # the ground truth first
        summary = {"true_flip_rate": sum(e["true_expression"] == t for t, e in edits) / max(1, len(edits)), **summary}
    (out / "demo_scores.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out / 'demo_grid.png'} and {out / 'demo_scores.json'} "
          f"({B} face(s) x {T} targets in {seconds:.0f} s; "
          + (f"true flip rate {summary['true_flip_rate']:.2f}, " if truth else "")
          + f"judge flip rate {summary['judge_flip_rate']:.2f})")
    return summary


def edit(image: str, target: str, out: Path, profile_name: str = "auto", seed: int = 0, **overrides) -> dict:
    from .data import to_uint8
    from PIL import Image

    emotion_index(target)
    if not Path(image).is_file():  # before looking for models: the first thing wrong is the first thing said
        sys.exit(f"emosmc: no such image file: {image}" + (" (it is a folder)" if Path(image).is_dir() else ""))
    profile = resolve_profile(profile_name)
    if profile_name == "auto" and profile.name == "toy":
        # never edit a real photo with the toy models by surprise
        real = get_profile("celebahq")
        sys.exit(f"emosmc: no trained celebahq UNet found (looked for {real.unet}, and for unet/ in the Kaggle inputs). "
                 "Train one with notebooks/02_train_unet.ipynb (Kaggle kernel 02) and set EMOSMC_CELEBAHQ to the "
                 "folder holding unet/; or pass --profile toy to edit with the bundled toy models (64x64 cartoon "
                 "faces, not photographs).")
    pipe = _pipeline(profile)
    notes = []
    x = pipe.load_images([image], notes)
    for n in notes:
        print("note:", n)
    from .metrics import no_face_warnings

    no_face_warnings(x, [Path(image).name])
    settings = edit_settings(profile.name)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    res = pipe(x, target, generator=torch.Generator().manual_seed(seed), **settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(res.images)[0]).save(out)
    probs = dict(zip(EMOTIONS, res.probs[0].tolist()))
    print(f"wrote {out}: p({target}) = {probs[target]:.3f} ({profile.name} profile)")
    return probs


def _arg_type(annotation) -> callable:
    """The argparse type of an SMCConfig field, from its annotation (``"Optional[float]"`` -> float)."""
    a = str(annotation)
    if "bool" in a:
        return lambda s: {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[s.lower()]
    return next((t for name, t in (("int", int), ("float", float)) if name in a), str)


def add_config_args(parser: argparse.ArgumentParser, defaults: Optional[dict] = None) -> List[str]:
    """Add every steering setting to ``parser``: each :class:`~emosmc.smc.SMCConfig` field (typed from its
    annotation, booleans parsed from true/false, 1/0, yes/no; the registries' names as choices), then the
    pipeline's ``--scorer`` and ``--final-check``. ``defaults`` (e.g. ``edit_settings("toy")``) gives each its
    default; without it every default is ``None`` ("the profile's preset"). Returns the settings' names, so
    ``{k: getattr(args, k) for k in names}`` are the pipeline's keywords."""
    defaults = defaults or {}
    names = []
    for f in fields(SMCConfig):  # every steering setting, from the one place it is declared
        if f.name == "reward_transform":
            continue  # the pipeline's rewards are log-probabilities already
        choices = {"potential": sorted(POTENTIALS), "reward_on": sorted(REWARD_ON),
                   "resampling": sorted(RESAMPLING_SCHEMES)}.get(f.name)
        parser.add_argument("--" + f.name.replace("_", "-"), type=_arg_type(f.type), default=defaults.get(f.name),
                            choices=choices, help=f"default: {defaults[f.name]}" if f.name in defaults else
                            "default: the profile's preset (emosmc.profiles.edit_settings)")
        names.append(f.name)
    parser.add_argument("--scorer", choices=["pixel", "latent"], default=defaults.get("scorer"),
                        help="pixel: decode every particle every step (Algorithm 1); latent: the fast path")
    parser.add_argument("--final-check", type=int, default=defaults.get("final_check"),
                        help="latent scorer: particles decoded at the end")
    return names + ["scorer", "final_check"]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emosmc", description="Counterfactual emotion editing with SMC.")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="counterfactual grid of toy faces (or --image) for every emotion")
    d.add_argument("--out", default="outputs")
    d.add_argument("--faces", type=int, default=3)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--image", help="your own face photo (needs the celebahq profile's weights)")
    d.add_argument("--profile", default=None, help="toy (default) or celebahq")
    e = sub.add_parser("edit", help="edit one image towards a target emotion")
    e.add_argument("image")
    e.add_argument("--target", required=True, help=f"one of {', '.join(EMOTIONS)}")
    e.add_argument("--out", default="outputs/edit.png")
    e.add_argument("--profile", default="auto",
                   help="celebahq, toy, or auto (default): celebahq when a trained UNet is found, else an error")
    e.add_argument("--seed", type=int, default=0)
    knobs = add_config_args(e)
    a = p.parse_args(argv)
    warnings.simplefilter("default")
    try:
        if a.cmd == "demo":
            prof = a.profile or ("celebahq" if a.image else "toy")
            demo(Path(a.out), a.faces, a.seed, a.image, prof)
        else:
            edit(a.image, a.target, Path(a.out), a.profile, a.seed, **{k: getattr(a, k, None) for k in knobs})
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"emosmc: {err}")


if __name__ == "__main__":
    main()

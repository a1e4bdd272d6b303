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

from .edit_config import REGIONS, SCORERS, EditConfig
from .evaluation import evaluate, summary, verdict_text
from .labels import EMOTIONS, emotion_index
from .potentials import POTENTIALS
from .profiles import get_profile, row_generators
from .resampling import RESAMPLING_SCHEMES
from .smc import REWARD_ON, SMCConfig


def _pipeline(profile, hint: str = ""):
    """The profile's pipeline; the UNet is checked first (a missing one is the likeliest problem, and the
    hub components would otherwise fail first with a less helpful message)."""
    from .pipeline import EmotionEditPipeline

    if not profile.has_unet():
        sys.exit(f"emosmc: no trained {profile.name} UNet found (looked for a trained UNet at {profile.unet}). "
                 f"{profile.setup}{hint}")
    try:
        return EmotionEditPipeline.from_profile(profile)
    except FileNotFoundError as err:
        sys.exit(f"emosmc: the {profile.name} profile's models are not available.\n{err}\n{profile.setup}")


def _photo(pipe, image) -> torch.Tensor:
    """``image`` loaded once (conversions said), with a warning when no face is found in it."""
    from .metrics import no_face_warnings

    notes: List[str] = []
    x = pipe.load_images([image], notes)
    for n in notes:
        print("note:", n)
    no_face_warnings(x, [Path(image).name])
    return x


def _judge(profile, pipe):
    """The profile's independent judge, or -- said, and named so in the scores -- the steering classifier."""
    try:
        return profile.load("judge", pipe.device), "judge"
    except (ValueError, FileNotFoundError) as err:
        print(f"note: no independent judge ({err}); the scores are the steering classifier's own")
        return pipe.classifier, "classifier"


def demo(out: Path, n_faces: int = 3, seed: int = 0, image=None, profile_name: str = "toy") -> dict:
    """Counterfactuals of the profile's demo faces (the toy profile: a few held-out toy faces), or of
    ``image``, towards every emotion: a grid (source, then one column per target with the ground-truth
    verdict where the profile has one, and the judge's probability) and a JSON of scores that opens with
    the true flip rate when there is a ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile(profile_name)
    pipe = _pipeline(profile)
    judge, judge_name = _judge(profile, pipe)
    if image is not None:
        from .data import Gallery

        faces = Gallery({"your image": _photo(pipe, image)[0]})
    else:
        faces = profile.demo_faces(n_faces)
    names = list(faces)
    src, src_labels = torch.stack([faces[n] for n in names]), [faces.expressions.get(n, n) for n in names]
    B, T = len(src), len(EMOTIONS)
    t0 = time.time()
    sources, targets = src.repeat_interleave(T, 0), list(EMOTIONS) * B
    res = pipe(sources, targets, profile.edit, generator=row_generators(seed, B * T), progress=True)
    seconds = time.time() - t0
    ev = evaluate(sources, res.images, targets, profile, judge=judge, classifier_probs=res.target_probs,
                  identities=[faces.identities[n] for n in names for _ in range(T)] if faces.identities else None)
    with torch.no_grad():
        p_src = judge(src.to(pipe.device)).cpu()
    edits = [r for k, r in enumerate(ev.records()) if r["target"] != src_labels[k // T]]  # not the source's own
    rates = summary(edits)
    title = None
    if edits and "counterfactual" in rates:  # drawn above the grid: the counterfactual rate and its two parts
        title = (f"{len(edits)} counterfactuals (every target but the source's own): counterfactual rate "
                 f"{rates['counterfactual']['rate']:.2f} ± {rates['counterfactual']['se']:.2f} = the target truly shown "
                 f"({rates['true_flip']['rate']:.2f}) and the same person ({rates['same_person']['rate']:.2f})")
    rows = _demo_grid(out, src, src_labels, res, p_src, ev, judge_name, title)
    scores = {
        "profile": profile.name, "settings": profile.edit.to_dict(), "seed": seed, "seconds": round(seconds, 1),
        "seconds_per_counterfactual": round(seconds / (B * T), 2),
        f"{judge_name}_flip_rate": rates["judge_flip"]["rate"] if edits else 0.0,
        f"{judge_name}_flip_rate_se": rates["judge_flip"]["se"] if edits else None,
    }
    if "identity" in rates:
        scores["identity"] = {"measure": profile.identity_name, "mean": rates["identity"]["mean"]}
    scores["faces"] = rows
    if ev.true_expression is not None:  # the ground truth first: the counterfactual rate, then its two parts
        head = {}
        for key in ("counterfactual", "true_flip", "same_person"):
            if key in rates:
                head[f"{key}_rate"] = rates[key]["rate"] if edits else 0.0
                head[f"{key}_rate_se"] = rates[key]["se"] if edits else None
        scores = {**head, **scores}
    (out / "demo_scores.json").write_text(json.dumps(scores, indent=2))
    print(f"wrote {out / 'demo_grid.png'} and {out / 'demo_scores.json'} "
          f"({B} face(s) x {T} targets in {seconds:.0f} s; "
          + (f"counterfactual rate {scores['counterfactual_rate']:.2f} (the target truly shown and the same person), "
             if "counterfactual_rate" in scores else "")
          + (f"true flip rate {scores['true_flip_rate']:.2f}, " if "true_flip_rate" in scores else "")
          + f"{judge_name} flip rate {scores[f'{judge_name}_flip_rate']:.2f})")
    return scores


def _demo_grid(out: Path, src, src_labels, res, p_src, ev, judge_name, title: Optional[str] = None) -> List[dict]:
    """Draw ``demo_grid.png`` and return one row of scores per source face (``ev``: the edits' evaluation)."""
    from .viz import image_grid

    T, p_out, truth = len(EMOTIONS), ev.judge_probs, ev.true_expression
    tiles, titles, rows = [], [], []
    for b in range(len(src)):
        tiles.append(src[b:b + 1])
        titles.append(f"source ({src_labels[b]})")
        row = {"source": src_labels[b], "source_probs": dict(zip(EMOTIONS, p_src[b].tolist())), "edits": {}}
        for j, e in enumerate(EMOTIONS):
            k = b * T + j
            tiles.append(res.images[k:k + 1].cpu())
            same = ev.extra.get("same_person")
            verdict = verdict_text(truth[k], e, None if same is None else float(same[k])).replace(" · ", "\n")
            verdict = verdict + "\n" if verdict else ""
            titles.append(f"→ {e}\n{verdict}{judge_name} p={p_out[k, j]:.2f}")
            row["edits"][e] = {"judge_prob": float(p_out[k, j]), "judge_argmax": EMOTIONS[int(p_out[k].argmax())],
                               "classifier_prob": float(ev.classifier_prob[k])}
            if truth:
                row["edits"][e]["true_expression"] = truth[k]
            if same is not None:
                row["edits"][e]["same_person"] = bool(same[k])
            if ev.identity is not None:
                row["edits"][e]["identity"] = float(ev.identity[k])
        rows.append(row)
    fig = image_grid(torch.cat(tiles), titles, ncols=T + 1, scale=1.5)
    if title:
        fig.suptitle(title, fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out / "demo_grid.png", dpi=110)
    return rows


def edit(image: str, target: str, out: Path, profile_name: str = "auto", seed: int = 0, **overrides) -> dict:
    """Edit one image file towards ``target`` with the profile's preset, ``overrides`` changed
    (``None`` values: the preset's). ``auto`` is the celebahq profile, never the toy one by surprise."""
    from .data import to_uint8
    from PIL import Image

    emotion_index(target)
    if not Path(image).is_file():  # before looking for models: the first thing wrong is the first thing said
        sys.exit(f"emosmc: no such image file: {image}" + (" (it is a folder)" if Path(image).is_dir() else ""))
    profile = get_profile("celebahq" if profile_name == "auto" else profile_name)
    config = profile.edit.replace(**{k: v for k, v in overrides.items() if v is not None})
    pipe = _pipeline(profile, " Or pass --profile toy to edit with the bundled toy models (64x64 cartoon faces, "
                              "not photographs)." if profile_name == "auto" else "")
    res = pipe(_photo(pipe, image), target, config, generator=torch.Generator().manual_seed(seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(res.images)[0]).save(out)
    probs = dict(zip(EMOTIONS, res.probs[0].tolist()))
    print(f"wrote {out}: p({target}) = {probs[target]:.3f} ({profile.name} profile)")
    return probs


def _parse_bool(s: str) -> bool:
    table = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if s.lower() not in table:
        raise argparse.ArgumentTypeError(f"not a boolean: {s!r} (true/false, yes/no, 1/0)")
    return table[s.lower()]


def _arg_type(annotation) -> callable:
    """The argparse type of a setting, from its annotation (``"Optional[float]"`` -> float)."""
    a = str(annotation)
    if "bool" in a:
        return _parse_bool
    return next((t for name, t in (("int", int), ("float", float)) if name in a), str)


CHOICES = {"potential": lambda: sorted(POTENTIALS), "reward_on": lambda: sorted(REWARD_ON),
           "resampling": lambda: sorted(RESAMPLING_SCHEMES), "scorer": lambda: list(SCORERS),
           "region": lambda: list(REGIONS)}
HELP = {"scorer": "pixel: decode every particle every step (Algorithm 1); latent: the fast path",
        "final_check": "latent scorer: particles decoded at the end",
        "region": "expression: change only the brows, eyes and mouth a detector finds on the image",
        "paste_back": "with a region: the source's own pixels outside it",
        "lowpass": "with a region: keep the source's k x k latent block means (its colours) inside it",
        "identity_weight": "beta: subtract beta x the colour distance to the source from the reward"}


def add_config_args(parser: argparse.ArgumentParser, defaults: Optional[EditConfig] = None) -> List[str]:
    """Add every edit setting (:meth:`EditConfig.names`) to ``parser`` as ``--num-particles`` etc.: typed
    from its annotation (booleans from true/false, yes/no, 1/0), the registries' names as choices.
    ``defaults`` (e.g. ``get_profile("toy").edit``) gives each its default; without it every default is
    ``None`` ("the profile's preset"). Returns the names; :func:`config_from_args` reads them back."""
    types = {f.name: f.type for f in (*fields(SMCConfig), *fields(EditConfig))}
    for name in EditConfig.names():
        default = getattr(defaults, name) if defaults is not None else None
        choices = CHOICES[name]() if name in CHOICES else None
        parser.add_argument("--" + name.replace("_", "-"), type=_arg_type(types[name]), default=default, choices=choices,
                            help=HELP.get(name, "") + (f" (default: {default})" if defaults is not None
                                                       else " (default: the profile's preset, Profile.edit)"))
    return EditConfig.names()


def config_from_args(args: argparse.Namespace, base: EditConfig) -> EditConfig:
    """``base`` with every setting given on the command line (options left ``None`` keep ``base``'s)."""
    return base.replace(**{k: getattr(args, k) for k in EditConfig.names() if getattr(args, k, None) is not None})


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
            given = {k: getattr(a, k) for k in knobs if getattr(a, k) is not None}  # the rest: the preset's
            edit(a.image, a.target, Path(a.out), a.profile, a.seed, **given)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"emosmc: {err}")


if __name__ == "__main__":
    main()

"""How the toy edit settings were chosen: on the tuning faces only (``TUNING_SEED``). Prints JSON.

    python benchmarks/toy_tuning.py --out benchmarks/results/toy_tuning.json

1. Unguided img2img at each strength of ``--strengths`` (the toy steps, one draw per face and target): how
   often the edit keeps the source's true expression. The strength sets how much of the face is open to
   change; the "keeps" bar (>= 0.80 on the benchmark) caps it.
2. SMC at each setting of ``--grid`` (``key=value,key=value`` strings over the toy preset): the true flip rate
   per target, the share the truth rule calls unclear, the share of true flips among edits the classifier is
   sure of, the identity ratio against unguided, and seconds per counterfactual.

Faces: ``--faces`` identities of ``TUNING_SEED``, face i shown with expression i % 7 and edited towards the
6 others. The quality benchmark (``toy_quality.py``) uses ``BENCHMARK_SEED``, on which nothing is chosen.
"""
import argparse
import json
import time

import torch
from results_json import emit

from emosmc.cli import add_config_args, config_from_args
from emosmc.edit_config import EditConfig
from emosmc.ground_truth import identity_kept, true_expression
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.gallery import counterfactual_rows
from emosmc.toy.faces import TUNING_SEED


def _r(v, n=3):
    return round(float(v), n)


def parse_setting(text: str, base: EditConfig) -> EditConfig:
    """``"noise_strength=0.4,guidance_scale=20,potential=difference"`` over ``base``, each value parsed as
    the command line parses it (:func:`emosmc.cli.add_config_args`)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_config_args(parser)
    pairs = [part.split("=", 1) for part in filter(None, text.split(","))]
    unknown = sorted(k for k, *_ in pairs if k not in EditConfig.names())
    if unknown or any(len(kv) != 2 for kv in pairs):
        raise ValueError(f"bad setting(s) in {text!r}: write key=value with keys among {EditConfig.names()}")
    args = parser.parse_args([tok for k, v in pairs for tok in ("--" + k.replace("_", "-"), v)])
    return config_from_args(args, base)


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=10)
    p.add_argument("--assets", help="toy assets folder (default: the bundled ones)")
    p.add_argument("--strengths", type=float, nargs="*", default=[0.35, 0.4, 0.45, 0.5, 0.55])
    p.add_argument("--grid", nargs="*", default=[""], help="settings over the toy preset, e.g. guidance_scale=20")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    add_config_args(p, get_profile("toy").edit)  # the base every --grid setting changes: the toy preset by default
    a = p.parse_args()
    prof = get_profile("toy", a.assets)
    pipe = EmotionEditPipeline.from_profile(prof)
    xs, src, tgt, idents, _ = counterfactual_rows(a.faces, TUNING_SEED)
    base = config_from_args(a, prof.edit)
    out = {"face_seed": TUNING_SEED, "faces": a.faces, "counterfactuals": len(tgt), "base": base.to_dict(),
           "threads": torch.get_num_threads(), "unguided_keeps_by_strength": {}, "smc": []}
    for s in a.strengths:
        plain = pipe.img2img(xs, base.num_inference_steps, s, 1, generator=torch.Generator().manual_seed(a.seed))[:, 0]
        out["unguided_keeps_by_strength"][str(s)] = _r(true_expression(plain, idents).is_(src).float().mean())
        print("strength", s, "unguided keeps", out["unguided_keeps_by_strength"][str(s)], flush=True)
    for text in a.grid:
        cfg = parse_setting(text, base)
        t0 = time.time()
        res = pipe(xs, [EMOTIONS[t] for t in tgt], cfg, generator=torch.Generator().manual_seed(a.seed),
                   progress=False)
        secs = (time.time() - t0) / len(tgt)
        plain = pipe.img2img(xs, cfg.num_inference_steps, cfg.noise_strength, 1,
                             generator=torch.Generator().manual_seed(a.seed))[:, 0]
        gt = true_expression(res.images, idents)
        flip = gt.is_(tgt)
        sure = res.target_probs >= 0.9
        ratio = identity_kept(xs, res.images, idents)["outside_l1"].mean() / identity_kept(xs, plain, idents)["outside_l1"].mean()
        row = {"setting": text or "(the preset)", "true_flip_rate": _r(flip.float().mean()),
               "by_target": {EMOTIONS[t]: _r(flip[tgt == t].float().mean()) for t in range(7)},
               "unclear": _r((gt.labels < 0).float().mean()),
               "true_when_classifier_sure": _r(flip[sure].float().mean()) if sure.any() else None,
               "unguided_keeps": _r(true_expression(plain, idents).is_(src).float().mean()),
               "identity_ratio": _r(ratio), "seconds_per_counterfactual": round(secs, 2)}
        out["smc"].append(row)
        print(json.dumps(row), flush=True)
    emit(out, a.out)


if __name__ == "__main__":
    main()

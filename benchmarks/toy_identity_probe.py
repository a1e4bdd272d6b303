"""Which design keeps the person? Flip against fidelity for edit variants, on the tuning faces. Prints JSON.

    python benchmarks/toy_identity_probe.py --grid "" "region=expression" \\
        "region=expression,lowpass=4,paste_back=true" --out benchmarks/results/toy_identity_probe.json

Each ``--grid`` entry is a setting over the toy preset (``key=value,...``, as ``toy_tuning.py`` reads them).
Faces: ``--faces`` identities of ``TUNING_SEED`` (face i shown with expression i % 7, edited towards the 6
others); one generator per edit (:func:`emosmc.profiles.row_generators`). Per variant: true flip, the
counterfactual rate (true flip and the same person, :func:`emosmc.ground_truth.same_person`), PSNR to the
true counterfactual ``render(identity, target)``, L1 outside the expression region, hair / skin / inner-skin
colour shift, each with its standard error; seconds per edit. The VAE's own reconstructions and unguided
img2img at the preset's strength (the two ends the same-person verdict is calibrated between) come first,
with every edit's identity measures (``--records``), for the calibration of the verdict.
"""
import argparse
import math
import time

import torch
from results_json import emit
from toy_tuning import parse_setting

from emosmc.evaluation import evaluate, summary
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.gallery import counterfactual_rows
from emosmc.toy.faces import TUNING_SEED

MEASURES = ("true_flip", "same_person", "counterfactual", "psnr", "identity", "hair_shift", "skin_shift",
            "inner_skin_shift", "l1_expression")


def measure_stats(ev) -> dict:
    """Per measure of :data:`MEASURES` that ``ev`` took: a rate (``rate``, ``se``, ``n``) or a mean with its
    standard error (``mean``, ``se``, ``n``)."""
    s = summary(ev)
    recs = ev.records()
    out = {}
    for k in MEASURES:
        if k not in s:
            continue
        if "rate" in s[k]:
            out[k] = {"rate": round(s[k]["rate"], 3), "se": round(s[k]["se"], 3), "n": s[k]["n"]}
        else:
            v = torch.tensor([r[k] for r in recs if r[k] is not None and r[k] == r[k]])
            out[k] = {"mean": round(float(v.mean()), 2), "se": round(float(v.std() / math.sqrt(len(v))), 2), "n": len(v)}
    return out


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=10)
    p.add_argument("--grid", nargs="*", default=[""])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--controls", action="store_true", help="also the VAE reconstructions and unguided img2img")
    p.add_argument("--records", action="store_true", help="keep every edit's measures (for calibration)")
    p.add_argument("--out")
    a = p.parse_args()
    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    xs, _, tgt, idents, keys = counterfactual_rows(a.faces, TUNING_SEED)
    out = {"face_seed": TUNING_SEED, "faces": a.faces, "counterfactuals": len(tgt),
           "threads": torch.get_num_threads(), "variants": []}

    def record(name, edits, seconds, extra=None):
        ev = evaluate(xs, edits, tgt, prof, identities=idents, judge=False, seconds=seconds)
        row = {"variant": name, **(extra or {}), **measure_stats(ev), "seconds_per_edit": round(ev.seconds, 2)}
        if a.records:
            row["records"] = [{k: r.get(k) for k in ("identity", "hair_shift", "skin_shift", "inner_skin_shift",
                                                     "true_flip", "psnr")} for r in ev.records()]
        out["variants"].append(row)
        print({k: v for k, v in row.items() if k != "records"}, flush=True)

    base = prof.edit
    if a.controls:
        t0 = time.time()
        record("VAE reconstruction of the source", pipe.decode(pipe.encode(xs)), time.time() - t0)
        t0 = time.time()
        plain = pipe.img2img(xs, base.num_inference_steps, base.noise_strength, 1,
                             generator=torch.Generator().manual_seed(a.seed))[:, 0]
        record(f"unguided img2img at strength {base.noise_strength}", plain, time.time() - t0)
    for text in a.grid:
        cfg = parse_setting(text, base)
        t0 = time.time()
        res = pipe(xs, [EMOTIONS[t] for t in tgt], cfg, generator=row_generators(a.seed, keys), progress=False)
        record(text or "(the preset)", res.images, time.time() - t0,
               {"unet_latents_per_edit": res.nfe["unet"] // len(tgt)})
    emit(out, a.out)


if __name__ == "__main__":
    main()

"""Calibrate the toy world's "same person" verdict on the tuning faces. Prints JSON.

    python benchmarks/toy_same_person.py --out benchmarks/results/toy_same_person.json

The verdict (:func:`emosmc.ground_truth.same_person`) bounds four identity measures of an edit
(:func:`emosmc.ground_truth.identity_kept`: L1 outside the expression region, hair, skin and inner-skin colour
shift). It must accept the VAE's own reconstructions -- what the models cannot help losing -- and reject
unguided img2img at the toy preset's strength, which redraws hair and skin. Each bound is ``--margin`` (1.1)
times the largest value the reconstructions of ``--faces`` tuning identities (``TUNING_SEED``, each shown with
its 6 other expressions' targets, as the benchmarks edit them) reach, rounded up to 0.1. Reported: the bounds,
the share of reconstructions accepted and of unguided edits rejected (with standard errors), and whether the
bounds in the library (:data:`emosmc.ground_truth.SAME_PERSON`) are these.
"""
import argparse
import math

import torch
from results_json import emit

from emosmc.evaluation import rate
from emosmc.ground_truth import SAME_PERSON, identity_kept, same_person
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.gallery import counterfactual_rows
from emosmc.toy.faces import TUNING_SEED

KEYS = ("outside_l1", "hair_shift", "skin_shift", "inner_skin_shift")


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=30)
    p.add_argument("--margin", type=float, default=1.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    a = p.parse_args()
    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    xs, _, _, idents, keys = counterfactual_rows(a.faces, TUNING_SEED)
    rec = pipe.decode(pipe.encode(xs))
    cfg = prof.edit
    plain = pipe.img2img(xs, cfg.num_inference_steps, cfg.noise_strength, 1,
                         generator=row_generators(a.seed, keys))[:, 0]
    m_rec, m_plain = identity_kept(xs, rec, idents), identity_kept(xs, plain, idents)

    def largest(v):
        return float(v[~torch.isnan(v)].max())

    bounds = {k: math.ceil(a.margin * largest(m_rec[k]) * 10) / 10 for k in KEYS}
    acc, rej = same_person(m_rec, bounds), 1 - same_person(m_plain, bounds)
    lib_acc, lib_rej = same_person(m_rec), 1 - same_person(m_plain)
    out = {"face_seed": TUNING_SEED, "faces": a.faces, "edits": len(xs), "margin": a.margin,
           "unguided_strength": cfg.noise_strength, "bounds": bounds,
           "reconstructions_accepted": rate(acc.tolist()), "unguided_rejected": rate(rej.tolist()),
           "library_bounds": dict(SAME_PERSON), "library_bounds_are_these": dict(SAME_PERSON) == bounds,
           "library_reconstructions_accepted": rate(lib_acc.tolist()), "library_unguided_rejected": rate(lib_rej.tolist()),
           "reconstructions": {k: {"median": round(float(m_rec[k].nanmedian()), 2), "max": round(largest(m_rec[k]), 2)}
                               for k in KEYS},
           "unguided": {k: {"median": round(float(m_plain[k].nanmedian()), 2)} for k in KEYS}}
    emit(out, a.out)


if __name__ == "__main__":
    main()

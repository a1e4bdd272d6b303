"""Is it the UNet or the sampler? The share of the UNet's samples from pure noise that are toy faces
(:mod:`emosmc.toy.face_fit`), by the number of sampler steps. Prints JSON.

    python benchmarks/toy_samples_steps.py --steps 120 1000 --seeds 0 1 --out benchmarks/results/toy_samples_steps.json

64 samples per (steps, seed), the pipeline's scheduler (DDPM), one torch thread. Seed 0 at the preset's steps
is the draw ``toy_quality.py`` shows in its samples grid.
"""
import argparse
import time

import torch
from results_json import emit

from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile
from emosmc.toy.face_fit import fit_faces


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[120, 1000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--out")
    a = p.parse_args()
    pipe = EmotionEditPipeline.from_profile(get_profile("toy"))
    runs = []
    for steps in a.steps:
        for seed in a.seeds:
            t0 = time.time()
            imgs = pipe.sample(a.samples, steps, torch.Generator().manual_seed(seed))
            faces = sum(f.is_face for f in fit_faces(imgs, seed=seed))
            runs.append({"steps": steps, "seed": seed, "n": a.samples, "face_rate": round(faces / a.samples, 3),
                         "seconds": round(time.time() - t0, 1)})
            print(runs[-1], flush=True)
    emit({"threads": torch.get_num_threads(), "runs": runs}, a.out)


if __name__ == "__main__":
    main()

"""What an edit costs against what it keeps: UNet evaluations, milliseconds per latent, the arithmetic floor and
seconds per counterfactual, beside the quality bars (true flip, PSNR to the true counterfactual, counterfactual
rate), for the toy preset and settings over it. Prints JSON.

    python benchmarks/cost_quality.py --grid "" "num_inference_steps=80" "num_particles=2" \\
        --out benchmarks/results/cost_quality_toy.json

Faces: ``--faces`` identities of ``TUNING_SEED`` (face i shown with expression i % 7, edited towards the 6 others:
14 faces are 84 counterfactuals), one generator per edit. Per setting: UNet latents per counterfactual, the UNet's
milliseconds per latent at one edit's particles (timed alone in this run), seconds per counterfactual, and the
rates with their standard errors. The floor, measured in the same run: the UNet's GFLOP per latent from torch's
FLOP counter, against this machine's GFLOP/s on a 2048² float32 matmul (one thread unless OMP_NUM_THREADS says
otherwise): the fewest milliseconds per latent the arithmetic allows.
"""
import argparse
import math
import time

import torch
from results_json import emit
from toy_tuning import parse_setting

from emosmc.data import images_to_tensor
from emosmc.evaluation import evaluate, summary
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.assets import source_rows, toy_faces
from emosmc.toy.faces import TUNING_SEED


@torch.no_grad()
def floor(pipe) -> dict:
    """GFLOP per latent of the UNet (torch's FLOP counter) and the machine's matmul GFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    c, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    z = torch.randn(8, c, s, s, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as fc:
        pipe.unet(z, torch.tensor(500))
    gflop = fc.get_total_flops() / 8 / 1e9
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    t0, reps = time.perf_counter(), 5
    for _ in range(reps):
        a @ b
    gflops = 2 * 2048**3 * reps / (time.perf_counter() - t0) / 1e9
    return {"unet_gflop_per_latent": round(gflop, 4), "matmul_gflop_per_s": round(gflops, 1),
            "floor_ms_per_latent": round(gflop / gflops * 1000, 2)}


@torch.no_grad()
def ms_per_latent(pipe, batch: int, repeats: int = 20) -> float:
    c, s = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    z = torch.randn(batch, c, s, s, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        pipe.unet(z, torch.tensor(500))
    t0 = time.perf_counter()
    for _ in range(repeats):
        pipe.unet(z, torch.tensor(500))
    return round((time.perf_counter() - t0) / repeats / batch * 1000, 2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=14)
    p.add_argument("--grid", nargs="*", default=[""])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    a = p.parse_args()
    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    imgs, labels, ids, _ = toy_faces(a.faces, TUNING_SEED)
    x = images_to_tensor(imgs)
    pick = source_rows(a.faces)
    rows = [(i, t) for i in range(a.faces) for t in range(7) if t != int(labels[pick[i]])]
    xs = x[pick][[i for i, _ in rows]]
    tgt = torch.tensor([t for _, t in rows])
    idents = [ids[i] for i, _ in rows]
    out = {"face_seed": TUNING_SEED, "faces": a.faces, "counterfactuals": len(rows), "threads": torch.get_num_threads(),
           **floor(pipe), "settings": []}
    for text in a.grid:
        cfg = parse_setting(text, prof.edit)
        t0 = time.time()
        res = pipe(xs, [EMOTIONS[t] for t in tgt], cfg, generator=row_generators(a.seed, [i * 7 + t for i, t in rows]),
                   progress=False)
        secs = (time.time() - t0) / len(rows)
        s = summary(evaluate(xs, res.images, tgt, prof, identities=idents, judge=False))
        psnr = [r["psnr"] for r in evaluate(xs, res.images, tgt, prof, identities=idents, judge=False).records()]
        mu = sum(psnr) / len(psnr)
        row = {"setting": text or "(the preset)", "unet_latents_per_counterfactual": res.nfe["unet"] // len(rows),
               "unet_ms_per_latent": ms_per_latent(pipe, cfg.num_particles), "seconds_per_counterfactual": round(secs, 3),
               **{k: {kk: round(v, 3) for kk, v in s[k].items() if kk in ("rate", "se")} for k in
                  ("true_flip", "counterfactual")},
               "psnr": {"mean": round(mu, 2), "se": round(math.sqrt(sum((v - mu) ** 2 for v in psnr) / (len(psnr) - 1)
                                                                  / len(psnr)), 2)}}
        out["settings"].append(row)
        print(row, flush=True)
    emit(out, a.out)


if __name__ == "__main__":
    main()

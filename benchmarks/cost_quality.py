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
import time

import torch
from results_json import emit
from toy_identity_probe import measure_stats
from toy_quality import unet_ms_per_latent
from toy_tuning import parse_setting

from emosmc.evaluation import evaluate
from emosmc.labels import EMOTIONS
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import get_profile, row_generators
from emosmc.toy.gallery import counterfactual_rows
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=14)
    p.add_argument("--grid", nargs="*", default=[""])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    a = p.parse_args()
    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    xs, _, tgt, idents, keys = counterfactual_rows(a.faces, TUNING_SEED)
    out = {"face_seed": TUNING_SEED, "faces": a.faces, "counterfactuals": len(tgt), "threads": torch.get_num_threads(),
           **floor(pipe), "settings": []}
    for text in a.grid:
        cfg = parse_setting(text, prof.edit)
        t0 = time.time()
        res = pipe(xs, [EMOTIONS[t] for t in tgt], cfg, generator=row_generators(a.seed, keys), progress=False)
        secs = (time.time() - t0) / len(tgt)
        stats = measure_stats(evaluate(xs, res.images, tgt, prof, identities=idents, judge=False))
        row = {"setting": text or "(the preset)", "unet_latents_per_counterfactual": res.nfe["unet"] // len(tgt),
               "unet_ms_per_latent": unet_ms_per_latent(pipe, cfg.num_particles),
               "seconds_per_counterfactual": round(secs, 3), **{k: stats[k] for k in ("true_flip", "counterfactual", "psnr")}}
        out["settings"].append(row)
        print(row, flush=True)
    emit(out, a.out)


if __name__ == "__main__":
    main()

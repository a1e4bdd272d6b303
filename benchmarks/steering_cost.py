"""What steering costs: Algorithm 1 as written against the fast path and the UNet-only floor. Prints JSON.

    python benchmarks/steering_cost.py                 # real-size architectures, random weights
    python benchmarks/steering_cost.py --ladder 4x4    # N x K settings to run (CPU default 4x4,8x8,16x16)
    python benchmarks/steering_cost.py --quality       # + the toy world's quality, fast path vs Algorithm 1

Real sizes: the 113.7M UNet on 4x32x32 latents, the SD-VAE architecture at 256x256 and ViT-base/16
at 224x224 (random weights: the cost does not depend on them), and a latent scorer for 4x32x32.
On a GPU the report's settings (N = 20, 250 steps at strength 0.23, so K = 57, R = 1); on a CPU a
ladder of scaled-down N x K (the fixed decodes of the fast path weigh less as N x K grows), plus a
projection to the report's settings from the unit costs measured in the largest run. Measured side by side in one run:

* ``algorithm1``: pixel scorer on the noisy latents at every step (decode every particle, ViT);
* ``fast``: latent scorer on the x0 predictions, then the top ``final_check`` particles decoded and
  judged by the pixel classifier;
* ``unet_floor``: the same N x K UNet evaluations and scheduler steps, one decode, no steering.

Each gets wall time per counterfactual, the share of time in the UNet, the decoder and the scorers
(forward hooks; CUDA synchronised) and peak memory (CUDA: max allocated; CPU: process peak RSS).
"""
import argparse
import json
import math
import resource
import sys
import time
from collections import defaultdict

import torch

from emosmc.cli import add_config_args, config_from_args
from emosmc.edit_config import EditConfig
from emosmc.latent_scorer import LatentEmotionScorer
from emosmc.pipeline import EmotionEditPipeline
from emosmc.profiles import celebahq_unet_config, device, load_scheduler, sd_vae_config
from emosmc.scorers import EmotionClassifier
from emosmc.diffusion import denoise, img2img_timesteps


class Clock:
    """Accumulates forward time per module group with hooks."""

    def __init__(self, cuda: bool):
        self.t, self.cuda, self.start = defaultdict(float), cuda, {}

    def watch(self, name, module):
        def pre(m, a):
            if self.cuda:
                torch.cuda.synchronize()
            self.start[name] = time.perf_counter()

        def post(m, a, o):
            if self.cuda:
                torch.cuda.synchronize()
            self.t[name] += time.perf_counter() - self.start[name]

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def real_pipeline(dev):
    from diffusers import AutoencoderKL, UNet2DModel
    from transformers import ViTConfig, ViTForImageClassification

    from emosmc.labels import DIMA806_ID2LABEL

    torch.manual_seed(0)
    vae = AutoencoderKL(**sd_vae_config())
    unet = UNet2DModel(**celebahq_unet_config())
    vit = ViTForImageClassification(ViTConfig(num_labels=7, id2label=dict(DIMA806_ID2LABEL),
                                              label2id={v: k for k, v in DIMA806_ID2LABEL.items()}))
    clf = EmotionClassifier(vit, [0.5] * 3, [0.5] * 3, (224, 224))
    ls = LatentEmotionScorer(sample_size=32, block_channels=(64, 128, 256))
    pipe = EmotionEditPipeline(vae.to(dev), unet.to(dev), load_scheduler(), clf.to(dev), ls.to(dev))
    if dev.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
    return pipe


@torch.no_grad()
def unet_floor(pipe, x, config, generator):
    """The same N x K UNet evaluations and scheduler steps as an edit (:func:`emosmc.diffusion.denoise`,
    img2img), one decode, no steering; on CUDA the UNet runs under float16 autocast."""
    z = pipe.encode(x).repeat_interleave(config.num_particles, 0)
    with torch.autocast("cuda", torch.float16, enabled=pipe.device.type == "cuda"):
        z = denoise(pipe.unet, pipe.scheduler, z, config.num_inference_steps, config.noise_strength, generator)
    return pipe.decode(z[:1].float())


def measure(pipe, x, target, config, mode, clock, repeats=1):
    cuda = pipe.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    clock.t.clear()
    t0 = time.perf_counter()
    for r in range(repeats):
        g = torch.Generator().manual_seed(r)
        if mode == "unet_floor":
            unet_floor(pipe, x, config, g)
        elif mode == "algorithm1":
            pipe(x, target, config.replace(scorer="pixel", reward_on="xt"), generator=g, progress=False)
        else:
            pipe(x, target, config.replace(scorer="latent", reward_on="x0"), generator=g, progress=False)
    if cuda:
        torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / repeats
    shares = {k: round(v / repeats / wall, 3) for k, v in clock.t.items()}
    out = {"seconds_per_counterfactual": round(wall, 3), "time_share": shares}
    if cuda:
        out["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def ratios(run):
    a, f, u = (run[m]["seconds_per_counterfactual"] for m in ("algorithm1", "fast", "unet_floor"))
    return {"speedup_fast_vs_algorithm1": round(a / f, 2), "fast_over_unet_floor": round(f / u, 3)}


def unit_costs(run):
    """Seconds per UNet evaluation (one particle), per decode and per classifier call (one image),
    from Algorithm 1's hook times: decodes and classifier calls there are N x K."""
    NK = run["settings"]["num_particles"] * run["steps_K"]
    a = run["algorithm1"]
    wall, share = a["seconds_per_counterfactual"], a["time_share"]
    return {"unet": wall * share["unet"] / NK, "decode": wall * share["vae_decoder"] / (NK + 1),
            "pixel_classifier": wall * share["pixel_classifier"] / (NK + 1),
            "latent_scorer": run["fast"]["seconds_per_counterfactual"] * run["fast"]["time_share"].get("latent_scorer", 0) / NK,
            # the rest of the floor's time: encoding the source, the scheduler
            "fixed": run["unet_floor"]["seconds_per_counterfactual"] * (1 - sum(run["unet_floor"]["time_share"].values()))}


def projection(c, N, K, final_check):
    """Counterfactual time from unit costs (a model, not a measurement)."""
    NK = N * K
    alg1 = NK * (c["unet"] + c["decode"] + c["pixel_classifier"]) + c["decode"] + c["pixel_classifier"] + c["fixed"]
    fast = (NK * (c["unet"] + c["latent_scorer"]) + final_check * (c["decode"] + c["pixel_classifier"])
            + c["pixel_classifier"] + c["fixed"])
    floor = NK * c["unet"] + c["decode"] + c["fixed"]
    return {"N": N, "K": K, "algorithm1_s": round(alg1, 1), "fast_s": round(fast, 1), "unet_floor_s": round(floor, 1),
            "speedup_fast_vs_algorithm1": round(alg1 / fast, 2), "fast_over_unet_floor": round(fast / floor, 3)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default=None)
    p.add_argument("--quality", action="store_true", help="also compare quality in the toy world")
    p.add_argument("--quality-only", action="store_true", help="only the toy-world quality comparison")
    p.add_argument("--faces", type=int, default=10)
    p.add_argument("--ladder", default=None,
                   help="N x K settings to run, e.g. '4x4,8x8,16x16' (default: the report's on CUDA, that ladder on CPU)")
    # every edit setting, the report's by default; --ladder sets num_particles, num_inference_steps and the strength,
    # each mode its scorer and reward_on; --final-check is the particles decoded at the end of the fast path
    add_config_args(p, EditConfig())
    a = p.parse_args()
    base = config_from_args(a, EditConfig())
    if a.quality_only:
        print(json.dumps({"toy_quality": toy_quality(a.faces)}, indent=2))
        return
    dev = device(a.device)
    cuda = dev.type == "cuda"
    strength = 0.23 if cuda else 0.2
    ladder = a.ladder or ("20x57" if cuda else "4x4,8x8,16x16")
    ladder = [tuple(int(v) for v in step.lower().split("x")) for step in ladder.split(",")]
    pipe = real_pipeline(dev)
    clock = Clock(cuda)
    clock.watch("unet", pipe.unet)
    clock.watch("vae_decoder", pipe.vae.decoder)
    clock.watch("pixel_classifier", pipe.classifier.model)
    clock.watch("latent_scorer", pipe.latent_scorer)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    res = {"device": torch.cuda.get_device_name(dev) if cuda else f"cpu ({torch.get_num_threads()} threads)",
           "note": "the report's settings are N = 20 particles and K = 57 steps (250 at strength 0.23); "
                   + ("run at them" if ladder == [(20, 57)] else "scaled down in steps to fit this device"),
           "final_check": base.final_check,
           "models": "113.7M UNet2DModel, SD-VAE architecture (256px), ViT-base/16 (224px), latent scorer; random weights",
           "runs": []}
    measure(pipe, x, "happy", base.replace(num_particles=2, num_inference_steps=10, noise_strength=0.2), "fast", clock)  # warm-up
    for N, K in ladder:
        steps = math.ceil(K / strength - 1e-9)
        config = base.replace(num_particles=N, num_inference_steps=steps, noise_strength=strength)
        run = {"settings": config.to_dict(),
               "steps_K": len(img2img_timesteps(pipe.scheduler, steps, strength))}
        for mode in ("algorithm1", "fast", "unet_floor"):
            run[mode] = measure(pipe, x, "happy", config, mode, clock)
            print(f"N={N} K={K}", mode, run[mode], file=sys.stderr, flush=True)
        run.update(ratios(run))
        res["runs"].append(run)
    costs = unit_costs(res["runs"][-1])
    res["unit_costs_s"] = {k: round(v, 4) for k, v in costs.items()}
    res["projected_report_settings"] = dict(
        projection(costs, 20, 57, base.final_check),
        how="a cost model from the unit costs of the largest run above (not a measurement)")
    if not cuda:
        res["peak_rss_mib_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if a.quality:
        res["toy_quality"] = toy_quality(a.faces)
    print(json.dumps(res, indent=2))


def toy_quality(n_faces):
    """True flip rate (the toy world's ground truth), judge flip rate and identity distance, fast path
    vs the pixel scorer, same sources and seeds (:func:`emosmc.evaluation.evaluate`)."""
    from emosmc.evaluation import evaluate, summary
    from emosmc.labels import EMOTIONS
    from emosmc.profiles import get_profile
    from emosmc.toy.assets import source_rows, toy_faces
    from emosmc.toy.faces import HELDOUT_SEED
    from emosmc.data import images_to_tensor

    prof = get_profile("toy")
    pipe = EmotionEditPipeline.from_profile(prof)
    judge = prof.load("judge")
    imgs, labels, ids, _ = toy_faces(n_faces, HELDOUT_SEED)
    x = images_to_tensor(imgs)[source_rows(n_faces)]  # face i shows EMOTIONS[i % 7]
    rows = [(i, t) for i in range(n_faces) for t in range(7) if t != i % 7]
    xs, targets = x[[i for i, _ in rows]], [EMOTIONS[t] for _, t in rows]
    idents = [ids[i] for i, _ in rows]
    from emosmc.baselines import method_settings
    from emosmc.profiles import row_generators

    # the report's SMC (the paper potential, no gradient nudge, the whole image) with each scorer, over the preset's
    # steps, strength, lambda and particles
    configs = {name: method_settings(m, prof.edit, prof.edit.num_particles)
               for name, m in (("algorithm1_pixel_x0", "smc-paper-pixel"), ("fast_latent_x0", "smc-paper-latent"))}
    out = {"counterfactuals": len(rows), "settings": configs["fast_latent_x0"].to_dict()}
    for name, config in configs.items():
        t0 = time.perf_counter()
        r = pipe(xs, targets, config, generator=row_generators(0, [i * 7 + t for i, t in rows]), progress=False)
        secs = time.perf_counter() - t0
        s = summary(evaluate(xs, r.images, targets, prof, identities=idents, judge=judge, seconds=secs))
        out[name] = {"true_flip_rate": round(s["true_flip"]["rate"], 3), "true_flip_se": round(s["true_flip"]["se"], 3),
                     "judge_flip_rate": round(s["judge_flip"]["rate"], 3),
                     "seconds_per_counterfactual": round(secs / len(rows), 3),
                     "identity_l1": round(s["identity"]["mean"], 2),
                     "decodes_per_counterfactual": r.nfe["decode"] / len(rows)}
    return out


if __name__ == "__main__":
    main()

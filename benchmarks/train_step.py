"""A UNet training step on cached latents against encoding every batch with the VAE (the report
authors' way). Prints JSON; both are measured side by side in one run.

    python benchmarks/train_step.py             # toy sizes (the bundled models' architectures)
    python benchmarks/train_step.py --real      # the 113.7M UNet and the SD-VAE architecture (random weights)

The on-the-fly step encodes a batch of images (no gradient, as the frozen VAE needs none), then
takes the same UNet step. Peak memory: CUDA max allocated per mode; on a CPU the process's peak
resident set size after both modes (one figure, said so).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DModel

from emosmc.profiles import celebahq_unet_config, device, load_scheduler, sd_vae_config, toy_unet_config, toy_vae_config


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--real", action="store_true")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--device", default=None)
    a = p.parse_args()
    dev = device(a.device)
    torch.manual_seed(0)
    vae = AutoencoderKL(**(sd_vae_config() if a.real else toy_vae_config())).to(dev).eval().requires_grad_(False)
    unet = UNet2DModel(**(celebahq_unet_config() if a.real else toy_unet_config())).to(dev).train()
    sch = load_scheduler()
    bs = a.batch_size or (32 if dev.type == "cuda" else (4 if a.real else 32))
    steps = a.steps or (20 if dev.type == "cuda" else (3 if a.real else 20))
    size = vae.config.sample_size
    images = torch.rand(bs, 3, size, size, device=dev) * 2 - 1
    with torch.no_grad():
        cached = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    amp = dict(device_type="cuda", dtype=torch.float16) if dev.type == "cuda" else dict(device_type="cpu", enabled=False)
    scaler = torch.amp.GradScaler(enabled=dev.type == "cuda")

    def step(z0):
        noise = torch.randn_like(z0)
        t = torch.randint(0, 1000, (len(z0),), device=dev)
        with torch.autocast(**amp):
            loss = F.mse_loss(unet(sch.add_noise(z0, noise, t), t).sample.float(), noise)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def on_the_fly():
        with torch.no_grad(), torch.autocast(**amp):
            z0 = vae.encode(images).latent_dist.sample() * vae.config.scaling_factor
        step(z0.float())

    def timed(fn):
        fn()  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out = {"seconds_per_step": (time.perf_counter() - t0) / steps}
        if dev.type == "cuda":
            out["peak_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        return out

    res = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
           "sizes": "real (113.7M UNet, SD-VAE architecture, 256px)" if a.real else "toy (1.1M UNet, toy VAE, 64px)",
           "batch_size": bs, "steps_timed": steps,
           "unet_params_m": round(sum(q.numel() for q in unet.parameters()) / 1e6, 1),
           "vae_params_m": round(sum(q.numel() for q in vae.parameters()) / 1e6, 1),
           "cached_latents": timed(lambda: step(cached)), "encode_every_batch": timed(on_the_fly)}
    res["speedup_cached_vs_encoding"] = round(res["encode_every_batch"]["seconds_per_step"]
                                              / res["cached_latents"]["seconds_per_step"], 2)
    if dev.type != "cuda":
        res["peak_rss_mib_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

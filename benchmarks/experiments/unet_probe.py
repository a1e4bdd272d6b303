"""The legibility probe: how well does a briefly trained toy UNet read a world's expressions?

    python benchmarks/experiments/unet_probe.py --assets <folder with a vae> --out <folder> [--steps 1500]
    python benchmarks/toy_denoiser.py --assets <folder> --timesteps 396 --sampler-steps 150

Trains the toy UNet (:func:`emosmc.profiles.toy_unet_config`) from scratch for ``--steps`` steps on
latents of the current renderer's training faces (``--identities`` of the training seed), encoded with
the VAE of ``--assets``, and writes a copy of that assets folder with the new UNet in ``--out``. Run it
in two checkouts (the old world and the new one) for the same number of steps and compare
``benchmarks/toy_denoiser.py``'s one-step "keeps" figure at the edit's first timestep: the share of
noisy sources whose UNet x0 estimate still shows the source's true expression.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DModel

from emosmc.data import images_to_tensor
from emosmc.diffusion import encode_images
from emosmc.profiles import load_scheduler, toy_unet_config
from emosmc.toy.assets import TRAIN_SEED, toy_faces
from emosmc.training import train_toy_unet

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assets", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--identities", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--norm-groups", type=int, help="override the UNet's norm_num_groups (the config's: 32)")
    a = p.parse_args()
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(a.assets, out, ignore=shutil.ignore_patterns("unet", "latent_scorer"))
    t0 = time.time()
    imgs, *_ = toy_faces(a.identities, TRAIN_SEED)
    vae = AutoencoderKL.from_pretrained(Path(a.assets) / "vae").eval()
    g = torch.Generator().manual_seed(a.seed)
    lat = torch.cat([encode_images(vae, b, generator=g) for b in images_to_tensor(imgs).split(256)])
    torch.manual_seed(a.seed)
    config = toy_unet_config()
    if a.norm_groups:
        config["norm_num_groups"] = a.norm_groups
    unet = UNet2DModel(**config)
    sch = load_scheduler()
    t1 = time.time()
    _, ema = train_toy_unet(unet, lat, sch, steps=a.steps, seed=a.seed, progress=False)
    ema.save_pretrained(out / "unet")
    sch.save_pretrained(out / "unet")
    print(json.dumps({"steps": a.steps, "images": len(lat), "train_s": round(time.time() - t1, 1),
                      "prep_s": round(t1 - t0, 1), "threads": torch.get_num_threads()}))

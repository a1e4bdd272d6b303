"""A UNet trained on more identities: tried, not shipped (docs/toy_world_experiments.md, "A UNet trained on
more identities").

    python benchmarks/experiments/fresh_faces.py --out DIR [--scale 1.0] [--seed 0]

trains the toy assets into ``DIR`` (``python -m emosmc.toy train-assets``'s stages, each skipped when done)
with one more stage before the latent scorer: 3000 more UNet steps on 6000 identities no other stage sees.
On 1500 identities the UNet's denoising loss on new faces was 15% above its training loss at t = 100-250;
this stage brings it down by 8%, but the true flip rate did not follow (0.51 -> 0.53 on the tuning faces,
0.69 -> 0.65 on the held-out ones). The latent scorer is removed so that the next stage distils it again
from the new UNet.
"""
import argparse
import json
import shutil
from pathlib import Path
from typing import List

import torch

from emosmc.data import images_to_tensor
from emosmc.diffusion import encode_images
from emosmc.toy.assets import AssetRun, Stage, default_stages, refine_unet, toy_faces, train_assets

__all__ = ["FRESH_SEED", "FRESH_IDENTITIES", "unet_fresh_faces_refine", "fresh_faces_stages"]

FRESH_SEED, FRESH_IDENTITIES = 1, 6000  # identities no other stage sees


def unet_fresh_faces_refine(run: AssetRun) -> dict:
    """3000 more annealed UNet steps (EMA 0.9995) on posterior samples of ``FRESH_IDENTITIES`` new identities."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(run.out / "vae").eval()
    im, *_ = toy_faces(max(20, int(FRESH_IDENTITIES * run.scale)), FRESH_SEED)
    g = torch.Generator().manual_seed(run.seed + 8)
    lat = torch.cat([encode_images(vae, b, generator=g) for b in images_to_tensor(im).split(256)])
    steps = run.steps(3000)
    refine_unet(run, lat, steps, run.seed + 8, ema_decay=0.9995)
    shutil.rmtree(run.out / "latent_scorer", ignore_errors=True)  # distilled from the old UNet
    return {"steps": steps, "images": len(lat)}


def fresh_faces_stages(long_refine: bool = False) -> List[Stage]:
    """``train-assets``' stages with this one before the latent scorer's."""
    stages = default_stages(long_refine)
    fresh = Stage("unet_fresh_faces_refine", unet_fresh_faces_refine, refines=True)
    return [s for s in stages if s.name != "latent_scorer"] + [fresh] + [s for s in stages if s.name == "latent_scorer"]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the toy assets folder to train (or to continue)")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the default data and steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--long-refine", action="store_true", help="as train-assets --long-refine")
    a = p.parse_args()
    print(json.dumps(train_assets(Path(a.out), a.scale, a.seed, stages=fresh_faces_stages(a.long_refine)), indent=2))

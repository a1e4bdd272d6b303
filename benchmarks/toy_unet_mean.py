"""Can the toy UNet see a face's colour? Its noise prediction's per-channel mean against the true noise's.

    python benchmarks/toy_unet_mean.py --out benchmarks/results/toy_unet_mean.json [--assets DIR]

A latent's per-channel spatial mean carries a face's colours (skin, hair, background). Noise a batch of
held-out latents to timestep t, and correlate the spatial mean of the UNet's epsilon prediction with that of
the true noise, channel by channel: a UNet that reads the input's mean predicts it (correlation near 1). Then
sample from pure noise and compare the spread of the samples' per-channel means with the data's: a UNet
blind to the mean passes the starting noise's mean (std 1/16 per channel) through x0 = (x_t - sqrt(1 - abar)
eps) / sqrt(abar) straight into the sample's colours, so the samples' spread is far above the data's.

The first toy UNet was blind to it: its GroupNorm had 32 groups over 32 channels (one channel per group, an
instance norm), which removes every feature map's spatial mean before the last convolution.
"""
import argparse

import torch
from results_json import emit

from emosmc.data import images_to_tensor
from emosmc.diffusion import denoise, encode_images
from emosmc.profiles import get_profile
from emosmc.toy.faces import HELDOUT_SEED
from emosmc.toy.gallery import toy_faces


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assets", help="toy assets folder (default: the bundled ones)")
    p.add_argument("--faces", type=int, default=256, help="held-out faces to noise")
    p.add_argument("--samples", type=int, default=32, help="samples from pure noise")
    p.add_argument("--timesteps", type=int, nargs="+", default=[999, 700, 400])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    a = p.parse_args()
    prof = get_profile("toy", a.assets)
    vae, unet, sch = prof.load("vae"), prof.load("unet"), prof.load("scheduler")
    imgs, *_ = toy_faces((a.faces + 6) // 7, HELDOUT_SEED)
    z0 = encode_images(vae, images_to_tensor(imgs[: a.faces]))
    out = {"assets": str(a.assets or "bundled"), "norm_num_groups": unet.config.norm_num_groups,
           "block_out_channels": list(unet.config.block_out_channels), "faces": len(z0), "threads": torch.get_num_threads(),
           "mean_correlation_by_timestep": {}}
    g = torch.Generator().manual_seed(a.seed)
    for t in a.timesteps:
        eps = torch.randn(z0.shape, generator=g)
        pred = unet(sch.add_noise(z0, eps, torch.full((len(z0),), t)), torch.tensor(t)).sample
        m_true, m_pred = eps.mean((2, 3)), pred.mean((2, 3))
        corr = [float(torch.corrcoef(torch.stack([m_true[:, c], m_pred[:, c]]))[0, 1]) for c in range(z0.shape[1])]
        out["mean_correlation_by_timestep"][str(t)] = [round(c, 3) for c in corr]
    s = denoise(unet, sch, torch.zeros(a.samples, *z0.shape[1:]), 150, 1.0, torch.Generator().manual_seed(a.seed))
    out["data_mean_std_per_channel"] = [round(v, 3) for v in z0.mean((2, 3)).std(0).tolist()]
    out["samples_mean_std_per_channel"] = [round(v, 3) for v in s.mean((2, 3)).std(0).tolist()]
    out["samples"] = a.samples
    emit(out, a.out)


if __name__ == "__main__":
    main()

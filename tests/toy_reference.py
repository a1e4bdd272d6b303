"""Outputs of the bundled toy models on fixed inputs.

``python tests/toy_reference.py`` rewrites ``tests/data/toy_reference.json`` -- run it only after
retraining the assets on purpose; ``test_toy_assets.py`` checks the shipped models against it.
"""
import json
from pathlib import Path

import torch

REF = Path(__file__).parent / "data" / "toy_reference.json"


@torch.no_grad()
def compute():
    from emosmc.profiles import get_profile
    from emosmc.toy.faces import render, sample_identity
    from emosmc.data import images_to_tensor

    prof = get_profile("toy")
    x = images_to_tensor(torch.stack([torch.from_numpy(render(sample_identity(5), e)) for e in ("happy", "sad")]))
    vae, unet, clf, judge, ls = (prof.load(k) for k in ("vae", "unet", "classifier", "judge", "latent_scorer"))
    z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    zin = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    return {
        "latent_slice": z[:, 0, 8, 4:8].flatten().tolist(),
        "decoded_slice": vae.decode(z / vae.config.scaling_factor).sample[:, :, 40, 30].flatten().tolist(),
        "unet_slice": unet(zin, 500).sample[0, :, 8, 8].tolist(),
        "classifier_probs": clf(x).flatten().tolist(),
        "judge_probs": judge(x).flatten().tolist(),
        "latent_scorer_probs": ls.log_probs(z, torch.tensor([0, 300])).exp().flatten().tolist(),
    }


if __name__ == "__main__":
    REF.write_text(json.dumps(compute(), indent=1))
    print("wrote", REF)

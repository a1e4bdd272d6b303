"""The two profiles -- ``toy`` (bundled, CPU) and ``celebahq`` (real weights) -- and their loaders.

Both go through the same functions: :func:`load_vae`, :func:`load_unet`,
:func:`load_scheduler` and :func:`emosmc.scorers.EmotionClassifier.from_pretrained`
accept a hub id or a ``save_pretrained`` folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Union

import torch

from .labels import DIMA806_ID2LABEL
from .places import find_celebahq_images, find_latent_scorer, find_trained_unet, work_dir

__all__ = [
    "TOY_ASSETS",
    "TOY_EDIT",
    "CELEBAHQ_EDIT",
    "edit_settings",
    "Profile",
    "get_profile",
    "resolve_profile",
    "load_vae",
    "load_unet",
    "load_scheduler",
    "load_classifier",
    "scheduler_config",
    "toy_vae_config",
    "toy_unet_config",
    "celebahq_unet_config",
    "sd_vae_config",
    "toy_classifier",
    "toy_judge",
    "device",
    "set_seed",
]

TOY_ASSETS = Path(__file__).parent / "assets" / "toy"



def device(prefer: Optional[str] = None) -> torch.device:
    """The one device helper: ``prefer`` if given, else CUDA when present, else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def scheduler_config() -> dict:
    """The report authors' DDPM settings (kept so their checkpoints load)."""
    return dict(num_train_timesteps=1000, beta_schedule="scaled_linear", prediction_type="epsilon", clip_sample=False)


def toy_vae_config() -> dict:
    """A ~0.3M-parameter AutoencoderKL: 64x64x3 images <-> 4x16x16 latents."""
    return dict(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
    )


def toy_unet_config() -> dict:
    """A ~1.1M-parameter UNet2DModel on 4x16x16 latents, the report's block pattern in small."""
    return dict(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=32, attention_head_dim=32,
    )


def celebahq_unet_config() -> dict:
    """The report's 113.7M-parameter UNet on 4x32x32 SD-VAE latents."""
    return dict(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    )


def sd_vae_config() -> dict:
    """The architecture of ``stabilityai/sd-vae-ft-ema`` (83.7M parameters), for cost benchmarks with
    random weights where the hub is out of reach: 256x256x3 <-> 4x32x32."""
    return dict(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=256, layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512), norm_num_groups=32, scaling_factor=0.18215,
    )


def toy_classifier(seed: int = 0):
    """The toy guidance classifier: a small ViT whose ``id2label`` is dima806's order."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    cfg = ViTConfig(image_size=64, patch_size=8, hidden_size=96, num_hidden_layers=4, num_attention_heads=4,
                    intermediate_size=192, num_labels=7, id2label=dict(DIMA806_ID2LABEL),
                    label2id={v: k for k, v in DIMA806_ID2LABEL.items()})
    return ViTForImageClassification(cfg)


def toy_judge(seed: int = 1):
    """The independent evaluation judge: a small ResNet (another architecture, seed and label order)."""
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(seed)
    order = ["surprise", "happy", "fear", "sad", "neutral", "angry", "disgust"]
    cfg = ResNetConfig(num_channels=3, embedding_size=24, hidden_sizes=[24, 48, 96], depths=[1, 1, 1],
                       layer_type="basic", num_labels=7, id2label=dict(enumerate(order)),
                       label2id={n: i for i, n in enumerate(order)})
    return ResNetForImageClassification(cfg)


def _missing(what: str, where, hint: str, err: Exception):
    return FileNotFoundError(f"no {what} found at {str(where)!r} ({type(err).__name__}: {err}). {hint}")


def load_vae(name_or_path: Union[str, Path], subfolder: Optional[str] = None, **kw):
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(str(name_or_path), subfolder=subfolder, **kw).eval()
    except (OSError, EnvironmentError) as err:
        raise _missing("VAE", name_or_path, "Give a save_pretrained folder, or a hub id on a machine with internet "
                       "(the celebahq profile uses stabilityai/sd-vae-ft-ema).", err) from err


def load_unet(name_or_path: Union[str, Path], subfolder: Optional[str] = None, **kw):
    from diffusers import UNet2DModel

    try:
        return UNet2DModel.from_pretrained(str(name_or_path), subfolder=subfolder, **kw).eval()
    except (OSError, EnvironmentError) as err:
        raise _missing("UNet checkpoint", name_or_path, "Train one with notebooks/02_train_unet.ipynb "
                       "(its checkpoints are save_pretrained folders) or point to the folder that holds it.", err) from err


def load_scheduler(name_or_path: Union[str, Path, None] = None, subfolder: Optional[str] = None):
    from diffusers import DDPMScheduler

    if name_or_path is None:
        return DDPMScheduler(**scheduler_config())
    return DDPMScheduler.from_pretrained(str(name_or_path), subfolder=subfolder)


def load_classifier(name_or_path: Union[str, Path]):
    from .scorers import EmotionClassifier

    return EmotionClassifier.from_pretrained(name_or_path)


@dataclass
class Profile:
    """Where one profile's components live (hub ids or folders) and its image size."""

    name: str
    vae: str
    unet: str
    classifier: str
    judge: Optional[str]
    image_size: int
    data: Optional[str] = None
    latent_scorer: Optional[str] = None

    def load(self, what: str, device_=None):
        dev = device(device_) if isinstance(device_, str) or device_ is None else device_
        if what == "vae":
            return load_vae(self.vae).to(dev)
        if what == "unet":
            return load_unet(self.unet).to(dev)
        if what == "scheduler":
            return load_scheduler(self.unet if Path(self.unet, "scheduler_config.json").exists() else None)
        if what == "classifier":
            return load_classifier(self.classifier).to(dev)
        if what == "latent_scorer":
            from .latent_scorer import LatentEmotionScorer

            if not self.latent_scorer:
                raise ValueError(f"the {self.name} profile has no latent scorer")
            try:
                return LatentEmotionScorer.from_pretrained(self.latent_scorer).eval().to(dev)
            except (OSError, EnvironmentError) as err:
                raise _missing("latent scorer", self.latent_scorer, "Train one with "
                               "emosmc.latent_scorer.distill_latent_scorer (notebooks/03_classifier_scoring).", err) from err
        if what == "judge":
            if self.judge is None:
                raise ValueError(f"the {self.name} profile has no judge classifier")
            return load_classifier(self.judge).to(dev)
        raise ValueError(f"unknown component {what!r}; one of vae, unet, scheduler, classifier, judge, latent_scorer")


# Steering settings for the bundled toy models, chosen on TUNING_SEED faces only (benchmarks/toy_tuning.py,
# docs/toy_world.md "Tuning"): in the legible world unguided img2img keeps the source's expression up to a high
# strength, so edits start later in the noise (strength 0.7 of 150 steps: 105 reverse steps) and steer harder
# (the report's rule at gamma = 20 on x0 predictions), with the latent scorer and 4 final particles decoded.
# A preset names only what differs from SMCConfig's defaults (the report's settings) and the pipeline's
# (the pixel scorer, 4 particles in the final check).
TOY_EDIT = dict(num_particles=16, num_inference_steps=150, noise_strength=0.7, guidance_scale=20.0,
                reward_on="x0", resampling="systematic", scorer="latent")
# The real models edit with the report's settings (its section 4: N = 20, 250 steps, strength 0.23, gamma 5).
CELEBAHQ_EDIT: dict = {}


def edit_settings(profile_name: str) -> dict:
    """Every steering setting a profile edits with: SMCConfig's defaults, then the profile's preset
    (a new dict: change it freely)."""
    from .smc import SMCConfig

    base = {f.name: f.default for f in fields(SMCConfig) if f.name != "reward_transform"}
    return {**base, **(TOY_EDIT if profile_name == "toy" else CELEBAHQ_EDIT)}


def get_profile(name: str = "toy", root: Optional[Union[str, Path]] = None) -> Profile:
    """``toy``: the bundled models (or those in ``root`` / ``$EMOSMC_TOY_ASSETS``, e.g. a retrained
    set before it replaces them). ``celebahq``: the real models; ``root`` (or ``$EMOSMC_CELEBAHQ``,
    else :func:`work_dir`) holds the trained UNet (``<root>/unet``, or found in Kaggle inputs) and
    the CelebA-HQ images are found by :func:`find_celebahq_images`."""
    if name == "toy":
        a = Path(root or os.environ.get("EMOSMC_TOY_ASSETS") or TOY_ASSETS)
        return Profile("toy", str(a / "vae"), str(a / "unet"), str(a / "classifier"), str(a / "judge"), 64,
                       latent_scorer=str(a / "latent_scorer"))
    if name == "celebahq":
        root = Path(root or os.environ.get("EMOSMC_CELEBAHQ") or work_dir())
        unet = find_trained_unet(root) or root / "unet"
        data = find_celebahq_images(root) or root / "images"
        return Profile("celebahq", "stabilityai/sd-vae-ft-ema", str(unet),
                       "dima806/facial_emotions_image_detection", None, 256, str(data),
                       latent_scorer=str(find_latent_scorer(root) or root / "latent_scorer"))
    raise ValueError(f"unknown profile {name!r}; choose 'toy' or 'celebahq'")


def resolve_profile(name: str = "auto", root=None, needs: str = "unet") -> Profile:
    """``auto`` picks ``celebahq`` when what the caller ``needs`` is present -- ``"data"`` (the
    CelebA-HQ images: notebook 01), ``"latents"`` (their latent cache ``latents-celebahq``: 02, 03)
    or ``"unet"`` (a trained UNet: 04-06) -- else ``toy``."""
    if name != "auto":
        return get_profile(name, root)
    if needs not in ("data", "latents", "unet"):
        raise ValueError(f"needs must be 'data', 'latents' or 'unet', got {needs!r}")
    root = root or os.environ.get("EMOSMC_CELEBAHQ")
    if needs == "data":
        return get_profile("celebahq", root) if find_celebahq_images(root) else get_profile("toy")
    if needs == "latents":
        from .latents import find_cache

        return get_profile("celebahq", root) if find_cache("latents-celebahq", root or work_dir()) else get_profile("toy")
    return get_profile("celebahq", root) if find_trained_unet(root or work_dir()) else get_profile("toy")

"""The models' configurations, by name: the report's DDPM schedule and UNet, the SD-VAE's architecture, and the toy
world's small models (a VAE, a UNet, a guidance classifier and a judge). :mod:`emosmc.profiles` re-exports them."""
from __future__ import annotations

import torch

from .labels import DIMA806_ID2LABEL, TOY_JUDGE_LABELS

__all__ = ["scheduler_config", "toy_vae_config", "toy_unet_config", "celebahq_unet_config", "sd_vae_config",
           "toy_classifier", "toy_judge"]


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
    """A ~1.1M-parameter UNet2DModel on 4x16x16 latents, the report's block pattern in small. Its GroupNorms
    hold 4 channels per group (32 channels / 8 groups), as the report's UNet does (128 / 32): with one channel
    per group each feature map loses its spatial mean, and the first toy UNet could not see or predict a
    face's colours (benchmarks/toy_unet_mean.py, docs/toy_world.md)."""
    return dict(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, attention_head_dim=32,
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
    order = TOY_JUDGE_LABELS
    cfg = ResNetConfig(num_channels=3, embedding_size=24, hidden_sizes=[24, 48, 96], depths=[1, 1, 1],
                       layer_type="basic", num_labels=7, id2label=dict(enumerate(order)),
                       label2id={n: i for i, n in enumerate(order)})
    return ResNetForImageClassification(cfg)

"""How many images fit in one VAE decode on a device.

The SD-VAE decoder's activations dominate: at 256x256 in fp32 it peaks at 173-206 MiB per image
(measured on CPU with the real config), so a batch of 64 needs 11-13 GiB and a T4 has about 15.
Batches are therefore sized from the free memory of the device the VAE is on.
"""
from __future__ import annotations

import os

import torch

__all__ = ["decode_mib_per_image", "free_memory_mib", "decode_batch_size"]

MIB_PER_IMAGE_256_FP32 = 210.0  # the measured peak, rounded up


def decode_mib_per_image(image_size: int, dtype: torch.dtype = torch.float32) -> float:
    """Peak decode memory per image, scaled by pixel count and bytes per element."""
    bytes_ratio = torch.finfo(dtype).bits / 32
    return MIB_PER_IMAGE_256_FP32 * (image_size / 256) ** 2 * bytes_ratio


def free_memory_mib(device) -> float:
    """Free memory on ``device``: ``cuda.mem_get_info`` on a GPU, ``MemAvailable`` on the CPU
    (``$EMOSMC_FREE_MIB`` overrides both, e.g. to test a small card)."""
    if os.environ.get("EMOSMC_FREE_MIB"):
        return float(os.environ["EMOSMC_FREE_MIB"])
    device = torch.device(device)
    if device.type == "cuda":  # free on the card plus what PyTorch holds cached but unused
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return (torch.cuda.mem_get_info(device)[0] + cached) / 2**20
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return 8192.0


def decode_batch_size(device, image_size: int, dtype: torch.dtype = torch.float32, fraction: float = 0.5,
                      cap: int = 64) -> int:
    """Images per decode so that one batch uses at most ``fraction`` of the free memory
    (at least 1, at most ``cap``)."""
    per = decode_mib_per_image(image_size, dtype)
    return max(1, min(cap, int(free_memory_mib(device) * fraction / per)))

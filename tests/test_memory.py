"""Decode batches sized from free memory, and chunked decoding that gives the same images."""
import torch

from emosmc.diffusion import decode_latents, encode_images
from emosmc.memory import decode_batch_size, decode_mib_per_image


def test_decode_batches_fit_half_the_free_memory(monkeypatch):
    assert decode_mib_per_image(256) == 210.0 and decode_mib_per_image(64) == 210.0 / 16
    assert decode_mib_per_image(256, torch.float16) == 105.0
    monkeypatch.setenv("EMOSMC_FREE_MIB", str(15 * 1024))  # a T4
    assert decode_batch_size("cpu", 256) == 36  # 15360 / 2 / 210, not 64
    assert decode_batch_size("cpu", 256, torch.float16) == 64  # capped
    monkeypatch.setenv("EMOSMC_FREE_MIB", "100")
    assert decode_batch_size("cpu", 256) == 1  # never 0


def test_chunked_decoding_equals_one_batch(pipe):
    x = torch.rand(5, 3, 64, 64) * 2 - 1
    z = encode_images(pipe.vae, x)
    torch.testing.assert_close(z, pipe.encode(x))
    whole, chunked = decode_latents(pipe.vae, z, chunk_size=5), decode_latents(pipe.vae, z, chunk_size=2)
    torch.testing.assert_close(whole, chunked, atol=1e-5, rtol=0)
    assert whole.min() >= -1 and whole.max() <= 1 and whole.shape == (5, 3, 64, 64)

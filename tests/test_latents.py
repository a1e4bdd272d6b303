"""The latent cache: encodes once, lists bad files, and resumes after an interruption."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from emosmc.data import ImageFolderDataset
from emosmc.latents import LatentCache, encode_folder, find_cache
from emosmc.profiles import get_profile
from emosmc.toy.dataset import write_dataset


@pytest.fixture(scope="module")
def vae():
    return get_profile("toy").load("vae")


@pytest.fixture()
def folder(tmp_path):
    write_dataset(tmp_path / "faces", 3, seed=7)  # 21 faces
    img = tmp_path / "faces" / "images"
    (img / "broken.png").write_bytes(b"\x89PNG not really")
    (img / "tiny.png").write_bytes(b"")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img / "small.png")
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(img / "gray.png")
    return img


class Interrupting(ImageFolderDataset):
    """Raises KeyboardInterrupt when asked for image ``stop_at`` (a session that dies)."""

    stop_at = 10

    def __getitem__(self, i):
        if i == self.stop_at:
            raise KeyboardInterrupt
        return super().__getitem__(i)


def test_cache_lists_skipped_files_and_matches_direct_encoding(folder, vae, tmp_path):
    with pytest.warns(UserWarning, match="3 file"):
        ds = ImageFolderDataset(folder, 64)
    cache = encode_folder(vae, ds, tmp_path / "lat", vae_id="toy", shard_size=8, progress=False)
    m = json.loads((tmp_path / "lat" / "manifest.json").read_text())
    assert sorted(s["file"].split("/")[-1] for s in m["skipped"]) == ["broken.png", "small.png", "tiny.png"]
    assert len(cache) == 22 and "gray.png" in cache.files and any("converted L" in n for n in m["notes"])
    assert [s["count"] for s in m["shards"]] == [8, 8, 6]
    z = cache.load()
    with torch.no_grad():
        direct = vae.encode(torch.stack([ds[i] for i in (0, 13, 21)])).latent_dist.mean * vae.config.scaling_factor
    assert torch.allclose(z[[0, 13, 21]], direct, atol=2e-2 * direct.abs().max())  # fp16 storage
    assert cache.scaling_factor == pytest.approx(vae.config.scaling_factor)


def test_interrupted_encoding_resumes_without_redoing_finished_shards(folder, vae, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, broken = ImageFolderDataset(folder, 64), Interrupting(folder, 64)
    ref = encode_folder(vae, ds, tmp_path / "ref", shard_size=8, progress=False).load()
    with pytest.raises(KeyboardInterrupt):
        encode_folder(vae, broken, tmp_path / "lat", shard_size=8, progress=False)
    first = tmp_path / "lat" / "latents-00000.safetensors"
    assert first.exists() and not (tmp_path / "lat" / "latents-00001.safetensors").exists()
    assert not LatentCache.open(tmp_path / "lat").complete
    assert find_cache("lat", tmp_path, inputs=tmp_path / "none") is None  # an unfinished cache is not used
    stamp = first.stat().st_mtime_ns
    broken.stop_at = 0  # re-encoding image 0 (shard 0) would now fail: the resume must skip it
    cache = encode_folder(vae, broken, tmp_path / "lat", shard_size=8, progress=False)
    assert first.stat().st_mtime_ns == stamp
    assert torch.equal(cache.load(), ref)
    assert find_cache("lat", tmp_path, inputs=tmp_path / "none") == tmp_path / "lat"


def test_cache_refuses_to_mix_vaes_and_finds_kaggle_inputs(folder, vae, tmp_path):
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = ImageFolderDataset(folder, 64)
    encode_folder(vae, ds, tmp_path / "in" / "kernel-01" / "latents", vae_id="a", shard_size=64, progress=False)
    with pytest.raises(ValueError, match="different 'vae'"):
        encode_folder(vae, ds, tmp_path / "in" / "kernel-01" / "latents", vae_id="b", progress=False, shard_size=64)
    retrained = copy.deepcopy(vae)  # the same id, other weights: the cache holds the old VAE's latents
    with torch.no_grad():
        next(retrained.parameters()).add_(0.01)
    with pytest.raises(ValueError, match="different 'vae_weights'"):
        encode_folder(retrained, ds, tmp_path / "in" / "kernel-01" / "latents", vae_id="a", progress=False, shard_size=64)
    assert find_cache("latents", tmp_path / "work", inputs=tmp_path / "in") == tmp_path / "in" / "kernel-01" / "latents"
    with pytest.raises(FileNotFoundError, match="no latent cache"):
        LatentCache.open(tmp_path / "work" / "latents")

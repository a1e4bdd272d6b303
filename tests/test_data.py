from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emosmc.data import ImageFolderDataset, ImageLoadError, load_image

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celebahq-samples"


def _save(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path)
    return path


def test_rgb_image_round_trips_to_minus_one_one(tmp_path):
    arr = np.zeros((32, 32, 3), np.uint8)
    arr[..., 0] = 255
    x = load_image(_save(tmp_path / "red.png", arr), 32)
    assert x.shape == (3, 32, 32)
    assert torch.allclose(x[0], torch.ones(32, 32)) and torch.allclose(x[1], -torch.ones(32, 32))


def test_grayscale_and_rgba_are_converted_and_reported(tmp_path):
    gray = _save(tmp_path / "g.png", np.full((40, 40), 128, np.uint8))
    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent -> composited on white
    rgba_p = _save(tmp_path / "a.png", rgba)
    notes = []
    with pytest.warns(UserWarning, match="g.png: converted L to RGB"):
        x = load_image(gray, 40, notes)
    assert torch.allclose(x, torch.full_like(x, 128 / 127.5 - 1), atol=1e-6)
    with pytest.warns(UserWarning, match="converted RGBA"):
        y = load_image(rgba_p, 40, notes)
    assert torch.allclose(y, torch.ones_like(y))
    assert len(notes) == 2


def test_non_square_is_centre_cropped_and_said(tmp_path):
    arr = np.zeros((20, 60, 3), np.uint8)
    arr[:, 20:40] = 255  # the centre square is white, the sides black
    notes = []
    with pytest.warns(UserWarning, match="centre-cropped 60x20 to 20x20"):
        x = load_image(_save(tmp_path / "wide.png", arr), 20, notes)
    assert torch.allclose(x, torch.ones_like(x))


def test_bad_files_name_the_file(tmp_path):
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.png is not a readable image"):
        load_image(txt, 32)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg", 32)
    tiny = _save(tmp_path / "tiny.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageLoadError, match="tiny.png is 4x4"):
        load_image(tiny, 32)
    trunc = tmp_path / "trunc.png"
    _save(trunc, np.zeros((64, 64, 3), np.uint8))
    trunc.write_bytes(trunc.read_bytes()[:40])
    with pytest.raises(ImageLoadError, match="trunc.png"):
        load_image(trunc, 32)


def test_folder_dataset_skips_and_lists_bad_files(tmp_path):
    for i in range(3):
        _save(tmp_path / f"ok{i}.png", np.full((32, 32, 3), 50 * i, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    _save(tmp_path / "tiny.png", np.zeros((3, 3, 3), np.uint8))
    with pytest.warns(UserWarning, match="2 file"):
        ds = ImageFolderDataset(tmp_path, 32)
    assert [p.name for p in ds.files] == ["ok0.png", "ok1.png", "ok2.png"]
    assert sorted(Path(f).name for f, _ in ds.skipped) == ["broken.jpg", "tiny.png"]
    assert torch.allclose(ds[1], torch.full((3, 32, 32), 50 / 127.5 - 1), atol=1e-6)


def test_toy_dataset_writer_is_read_by_the_same_loader(tmp_path):
    from emosmc.labels import EMOTIONS
    from emosmc.toy.dataset import write_dataset

    write_dataset(tmp_path, n_identities=2, seed=3)
    ds = ImageFolderDataset(tmp_path, 64)
    assert len(ds) == 14 and not ds.skipped
    assert [r["expression"] for r in ds.labels[:7]] == list(EMOTIONS)
    assert ds[0].shape == (3, 64, 64)


@pytest.mark.skipif(not SAMPLES.exists(), reason=f"real CelebA-HQ samples not found at {SAMPLES}")
def test_real_celebahq_photos_load_at_256_and_from_1024():
    files = sorted((SAMPLES / "256").glob("*.jpg"))
    assert len(files) >= 50
    x = load_image(files[0], 256)
    assert x.shape == (3, 256, 256) and -1 <= float(x.min()) and float(x.max()) <= 1 and x.std() > 0.1
    big = sorted((SAMPLES / "1024").glob("*.jpg"))[0]
    notes = []
    y = load_image(big, 256, notes)
    assert y.shape == (3, 256, 256) and notes == [f"{big.name}: resized 1024x1024 to 256x256"]
    ds = ImageFolderDataset(SAMPLES / "256", 256)
    assert len(ds) == len(files) and not ds.skipped

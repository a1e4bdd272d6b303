"""emosmc.regions: the expression region comes from a detector run on the image -- the toy world's small CNN
and MTCNN's landmarks on photographs -- with soft edges, and the sampler keeps the source outside it."""
from pathlib import Path

import numpy as np
import pytest
import torch

from emosmc.data import images_to_tensor
from emosmc.labels import EMOTIONS
from emosmc.profiles import get_profile
from emosmc.regions import RegionDetector, covers, feather, landmark_region, to_latent_mask
from emosmc.toy.assets import toy_faces
from emosmc.toy.faces import TUNING_SEED, face_regions, render, sample_identity

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celebahq-samples" / "256"


def test_feather_keeps_the_region_grows_it_and_softens_its_edge():
    m = torch.zeros(1, 1, 32, 32)
    m[..., 10:20, 12:22] = 1
    f = feather(m, grow=2, soften=1.0)
    assert (f[m > 0] == 1).all() and f.min() >= 0 and f.max() <= 1
    assert f[0, 0, 15, 10] > 0.5 and f[0, 0, 15, 6] < 0.1  # grown by 2 px, then softened
    edge = f[0, 0, 15, 5:12]
    assert ((edge > 0) & (edge < 1)).any() and (edge.diff() >= -1e-6).all()  # soft, rising towards the region
    assert f[0, 0, 0, 0] == 0


def test_latent_mask_takes_the_largest_value_of_each_block():
    m = torch.zeros(1, 1, 8, 8)
    m[0, 0, 1, 1] = 0.3
    lat = to_latent_mask(m, 2)
    assert lat.shape == (1, 1, 2, 2) and lat[0, 0, 0, 0] == pytest.approx(0.3) and lat[0, 0, 1, 1] == 0


def _where_expressions_draw(ids):
    """``(B, H, W)``: inside the expression region, the pixels where the seven expressions of a face differ."""
    out = []
    for ident in ids:
        r = images_to_tensor(np.stack([render(ident, e) for e in EMOTIONS]))
        moved = (r.amax(0) - r.amin(0)).amax(0) > 0.1
        out.append(moved & torch.from_numpy(face_regions(ident)["expression"]))
    return torch.stack(out).float()


def test_the_toy_detector_finds_where_expressions_draw_on_faces_it_never_saw():
    """Held-out identities (TUNING_SEED): the detector, run on the image alone, finds the pixels an emotion edit
    may change -- where the face's seven expressions differ (IoU) -- its feathered mask covers nearly all of
    them and leaves most of the rest (hair, background, the skin no expression draws on) to the source; a
    face drawn further right gets a mask further right."""
    det = get_profile("toy").load("region_detector", "cpu")
    imgs, labels, ids, who = toy_faces(12, TUNING_SEED)
    x = images_to_tensor(imgs)[::7]  # one expression per face: neutral (the first)
    true = _where_expressions_draw(ids)
    hard = (det.parts(x).amax(1) > 0.5).float()
    iou = (hard * true).sum((1, 2)) / ((hard + true) > 0).float().sum((1, 2))
    assert iou.mean() > 0.75 and iou.min() > 0.6, iou
    m = det(x)[:, 0]
    assert ((m >= 0.99).float() * true).sum() / true.sum() > 0.9
    assert (m * (1 - true)).sum() / (1 - true).sum() < 0.25  # and not the whole image
    from dataclasses import replace

    ident = sample_identity(5)
    here, right = (replace(ident, dx=d) for d in (0.0, 0.0625))  # the face 4 px further right
    hard = (det.parts(images_to_tensor(np.stack([render(here, "neutral"), render(right, "neutral")]))).amax(1) > 0.5)
    cols = torch.arange(64.0)
    centre = [(h.float().sum(0) * cols).sum() / h.float().sum() for h in hard]
    assert 2.5 < centre[1] - centre[0] < 5.5, centre


def test_region_detector_round_trips(tmp_path):
    det = RegionDetector()
    det.save_pretrained(tmp_path / "det")
    again = RegionDetector.from_pretrained(tmp_path / "det")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(det(x), again(x)) and det(x).shape == (2, 1, 64, 64)


def test_landmark_region_covers_eyes_and_mouth_and_little_else():
    lm = np.array([[90, 110], [160, 110], [125, 145], [98, 185], [152, 185]], float)
    m = landmark_region(lm, 256)
    assert m.shape == (1, 256, 256)
    assert covers(m, lm[[0, 1, 3, 4]]) and covers(m, [[125, 80]])  # eyes, mouth corners, the brows above
    assert float(m[0, 250, 10]) == 0 and float(m[0, 5, 125]) == 0  # not the hair or the corners
    assert 0.05 < float(m.mean()) < 0.35


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the CelebA-HQ sample photos (../shared/data) are not here")
def test_wherever_mtcnn_finds_a_face_the_mask_covers_its_eyes_and_mouth():
    pytest.importorskip("facenet_pytorch")
    from emosmc.data import ImageFolderDataset
    from emosmc.regions import MTCNNRegionDetector

    ds = ImageFolderDataset(SAMPLES, 256)
    x = torch.stack([ds[i] for i in range(len(ds))])
    det = MTCNNRegionDetector()
    lms = det.landmarks(x)
    masks = det(x)
    found = [i for i, lm in enumerate(lms) if lm is not None]
    assert len(found) >= 0.9 * len(x)
    for i in found:
        assert covers(masks[i], lms[i][[0, 1, 3, 4]]), i
        assert float(masks[i].mean()) < 0.5  # a region, not the whole photo


def test_no_face_found_edits_everywhere_and_says_so():
    pytest.importorskip("facenet_pytorch")
    from emosmc.regions import MTCNNRegionDetector

    with pytest.warns(RuntimeWarning, match="no face in image 0"):
        m = MTCNNRegionDetector()(torch.zeros(1, 3, 128, 128))
    assert torch.equal(m, torch.ones(1, 1, 128, 128))

"""The toy world's face test (emosmc.toy.face_fit): fit the renderer, accept faces, reject non-faces."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from emosmc.data import images_to_tensor
from emosmc.ground_truth import true_expression
from emosmc.toy.face_fit import SKIN_MAX, _Search, fit_face, skin_distance
from emosmc.toy.faces import SKIN_TONES, HELDOUT_SEED, render, sample_identity


def test_the_colour_model_reproduces_a_render_from_its_identity():
    """The least-squares colours make a render of the true geometry match the image: the render is
    (nearly) linear in the three identity colours, happy cheeks and dark hair on a bright background included."""
    for seed, e in ((1, "happy"), (2, "angry"), (3, "surprise"), (4, "neutral")):
        ident = sample_identity(HELDOUT_SEED + 700 + seed)
        residual, fitted, _, _ = _Search(render(ident, e)).score(ident, e, 1.0)
        assert residual < 0.5, (e, residual)
        assert np.abs(np.subtract(fitted.skin, ident.skin)).max() < 0.01
        assert np.abs(np.subtract(fitted.background, ident.background)).max() < 0.01


def test_fit_explains_clean_faces_and_their_expression():
    cases = [(sample_identity(HELDOUT_SEED + 500 + k), e) for k, e in enumerate(("happy", "sad", "surprise"))]
    images = images_to_tensor(np.stack([render(ident, e) for ident, e in cases]))
    fits = [fit_face(im) for im in images]
    for (ident, e), f in zip(cases, fits):
        assert f.is_face, (e, f)
        assert np.abs(np.subtract(f.identity.skin, ident.skin)).max() < 0.03
        assert f.expression == e
    # the fitted identity is good enough for the ground-truth rule
    assert true_expression(images, [f.identity for f in fits]).names == [e for _, e in cases]
    again = fit_face(images[0])
    assert again.residual == fits[0].residual and again.identity == fits[0].identity  # deterministic


def test_fit_rejects_what_is_not_a_toy_face():
    ident = sample_identity(HELDOUT_SEED + 600)
    face = render(ident, "neutral")
    green = render(replace(ident, skin=(0.25, 0.6, 0.2)), "neutral")  # a green blob with eyes
    tiles = face.reshape(8, 8, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(64, 8, 8, 3)
    tiles = tiles[np.random.default_rng(0).permutation(64)]
    shuffled = tiles.reshape(8, 8, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(64, 64, 3)
    fits = {name: fit_face(im) for name, im in
            (("green skin", green), ("upside down", np.ascontiguousarray(face[::-1])), ("shuffled", shuffled))}
    assert fits["green skin"].skin_distance > SKIN_MAX
    for name, f in fits.items():
        assert not f.is_face, (name, f)


def test_skin_distance_and_bad_input():
    assert all(skin_distance(c) < 1e-9 for c in SKIN_TONES)
    assert skin_distance((SKIN_TONES[0] + SKIN_TONES[4]) / 2) < 1e-9  # a mix of two tones
    assert skin_distance((0.2, 0.8, 0.2)) > 0.3
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        fit_face(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="square uint8"):
        fit_face(np.zeros((64, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        fit_face(np.zeros((64, 64, 3), np.float32))


def test_thresholds_are_the_calibration_runs():
    """The face test's thresholds are those ``benchmarks/toy_face_fit.py --calibrate`` printed for the
    bundled VAE (kept in benchmarks/results/toy_face_fit_calibration.json), not typed by hand."""
    import json
    from pathlib import Path

    from emosmc.toy.face_fit import REGION_MAX, RESIDUAL_MAX

    cal = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "toy_face_fit_calibration.json").read_text())
    assert (RESIDUAL_MAX, REGION_MAX) == (cal["RESIDUAL_MAX"], cal["REGION_MAX"])

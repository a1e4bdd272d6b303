import numpy as np
import pytest

from emosmc.labels import EMOTIONS
from emosmc.toy.faces import GEOMETRY, Identity, face_regions, render, sample_identity


def test_identity_and_render_are_deterministic():
    a, b = sample_identity(42), sample_identity(42)
    assert a == b and a != sample_identity(43)
    assert np.array_equal(render(a, "happy"), render(b, "happy"))
    assert render(a, "sad").shape == (64, 64, 3) and render(a, "sad").dtype == np.uint8


def test_identities_are_the_ones_every_dataset_and_model_was_made_with():
    """The draws of sample_identity are pinned: changing their order or ranges changes every toy dataset."""
    a = sample_identity(42)
    assert (a.hair_style, round(a.face_width, 6), round(a.eye_spacing, 6), round(a.skin[0], 6)) == ("bob", 0.386605, 0.930211, 0.918832)
    assert (a.dx, a.dy, a.tilt) == (0.0, 0.0, 0.0)  # the face always sits in the same place
    assert all(lo <= getattr(sample_identity(s), k) <= hi for s in range(50) for k, (lo, hi) in GEOMETRY.items())


def test_identity_round_trips_through_a_csv_row():
    ident = sample_identity(7)
    back = Identity.from_row({k: str(v) for k, v in ident.to_row().items()})
    assert np.abs(render(back, "fear").astype(int) - render(ident, "fear").astype(int)).max() <= 2


def test_expressions_change_only_the_expression_region():
    """The same person with another expression: brows, eyes and mouth change, skin, hair and
    background stay (the ground truth of a counterfactual)."""
    for seed in range(5):
        ident = sample_identity(seed)
        m = face_regions(ident)
        base = render(ident, "neutral").astype(int)
        for e in EMOTIONS:
            if e == "neutral":
                continue
            diff = np.abs(render(ident, e).astype(int) - base).sum(-1)
            assert diff[m["expression"]].mean() > 4 * max(diff[m["identity"]].mean(), 0.5), (seed, e)
            assert (diff[m["identity"]] > 30).mean() < 0.03, (seed, e)


def test_every_expression_is_distinct_for_the_same_identity():
    ident = sample_identity(3)
    imgs = {e: render(ident, e).astype(int) for e in EMOTIONS}
    for i, e in enumerate(EMOTIONS):
        for f in EMOTIONS[i + 1:]:
            assert np.abs(imgs[e] - imgs[f]).sum(-1).max() > 100, (e, f)


def test_intensity_zero_is_neutral_and_unknown_expression_is_refused():
    ident = sample_identity(1)
    assert np.abs(render(ident, "angry", intensity=0.0).astype(int) - render(ident, "neutral").astype(int)).max() <= 2
    with pytest.raises(ValueError, match="angry, .*surprise|'joy'"):
        render(ident, "joy")
